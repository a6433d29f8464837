"""The infinite-width limits: kernels, the Xavier Gaussian, deep NNGP/NTK kernels
and their Gaussian prediction, the mean-field particle flow, the three-layer
proxy limit, and Tian's teacher–student flow. Limits never train networks: the
runs they are compared with live in :mod:`jaxlimit.training`."""

from jaxlimit.limits.base import Limit, mismatch
from jaxlimit.limits.user import LinearNoise, ODELimit, ode_limit
from jaxlimit.limits.three_layer import ProxyEstimate, ThreeLayerLimit, gradient_flow
# The function gaussian_expectations stays in its module (same name): exporting it
# here would hide the submodule attribute jaxlimit.limits.gaussian_expectations.
from jaxlimit.limits.gaussian_expectations import ClosedForm, GaussianExpectations, closed_form_of, find_kinks
from jaxlimit.limits.kernels import (
    CLOSED_FORMS, XavierKernels, estimate_xavier_kernels, monte_carlo_xavier_kernels, xavier_kernels,
)
from jaxlimit.limits.kernel_limit import KernelLimit, limit_from_kernels
from jaxlimit.limits.empirical import MonteCarloKernels, empirical_ntk, monte_carlo_kernels, ntk_observable
from jaxlimit.limits.mlp import MLPKernels, estimate_mlp_kernels, mlp_kernels, mlp_limit
from jaxlimit.limits.lazy import lazy_limit
from jaxlimit.limits.xavier import (
    KernelConditioning, XavierLimit, initial_kurtosis_excess, xavier_limit,
)
from jaxlimit.limits.mean_field import (
    FluctuationPrediction, MeanFieldLimit, ParticleFlow, Particles, influence_functions,
    mean_field_limit, network_particles, particle_outputs, predict_fluctuations, sample_particles,
    solve_particle_flow,
)
from jaxlimit.limits.teacher_student import (
    Ending, PopulationFlowLimit, StudentTrajectories, classify_ending, population_flow_limit,
    relu_gradient_flow, relu_kernel, relu_kernel_grad, relu_population_grad,
    relu_population_hessian, relu_population_loss, relu_reduced_flow, relu_reduced_velocity,
    relu_unstable_rate, single_neuron_bound, single_neuron_bound_radius,
    single_neuron_inside_probability, symmetric_coordinates, symmetric_saddle_value,
    symmetric_weights, teacher_distance, time_within, uniform_ball,
)
