"""Two fake CPU devices for the pmap tests; must run before JAX initialises its backends. One
persistent compilation cache per test run, and programs compiled without LLVM's optimisations."""
import os
import shutil
import tempfile

import chex
import jax
import pytest

# The suite's programs are small and run for milliseconds: much of its time is compilation, and
# LLVM's optimisation passes a large part of that (the every-strategy run on the pose stand-in:
# 60 s with them, 33 s without; the whole suite 735 s against 608 s, AMD EPYC, 2 cores). XLA's
# own graph passes still run; what changes is machine code, so results differ from an optimised
# build's by float rounding at most, which every tolerance here allows for (they are set for the
# AMD/Intel difference). The processes the tests start inherit
# the flag through the environment, so runs compared with each other are built alike. A flag the
# caller set wins: `XLA_FLAGS=--xla_backend_optimization_level=2 pytest` checks optimised code.
if '--xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = ' '.join(
      [*os.environ.get('XLA_FLAGS', '').split(), '--xla_backend_optimization_level=0'])
chex.set_n_cpu_devices(2)

# One persistent compilation cache for the run, made by the first process that reads this file
# (pytest's, before its workers) and inherited through the environment by the workers and by the
# processes the tests start: a program another test or process already built is read back instead
# of compiled again. A cached program is the same program, so no result changes, only time.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='l2r-jax-test-xla-')
  os.environ['L2R_JAX_TEST_CACHE_OWNER'] = str(os.getpid())
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
jax.config.update('jax_compilation_cache_dir', os.environ['JAX_COMPILATION_CACHE_DIR'])
jax.config.update('jax_persistent_cache_min_compile_time_secs',
                  float(os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS']))


def pytest_unconfigure(config):
  """The process that made the cache removes it once the run is over."""
  del config
  if os.environ.get('L2R_JAX_TEST_CACHE_OWNER') == str(os.getpid()):
    shutil.rmtree(os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)


@pytest.fixture
def rng():
  return jax.random.PRNGKey(0)
