"""``jaxlimit teacher-student``: Tian's two-layer ReLU teacher–student against its population flow."""

from jaxlimit.experiments.teacher_student.config import TeacherStudentConfig


def run(config: TeacherStudentConfig):
    """Run the measurements ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["TeacherStudentConfig", "run"]
