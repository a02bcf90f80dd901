"""Two fake CPU devices for the pmap tests; must run before JAX initialises its backends."""
import chex
import jax
import pytest

chex.set_n_cpu_devices(2)


@pytest.fixture
def rng():
  return jax.random.PRNGKey(0)
