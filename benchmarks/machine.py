"""The machine a report was measured on, for its header.

XLA's CPU numerics and speed depend on the instruction set, so a report names the CPU model and
its widest vector extension: results compare only within one machine."""
import importlib.metadata
import os
import platform


def cpu_model() -> str:
  """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
  try:
    with open('/proc/cpuinfo') as f:
      fields = {key.strip(): value.strip()
                for key, value in (line.split(':', 1) for line in f if ':' in line)}
  except OSError:
    return platform.processor() or platform.machine()
  name = fields.get('model name') or platform.processor() or platform.machine()
  if 'cpu family' in fields and 'model' in fields:
    # One model name can cover several generations (a cloud's 'Intel Xeon Processor'), and XLA
    # compiles for the host's own instruction set: the family and model tell them apart.
    name += f' (family {fields["cpu family"]}, model {fields["model"]})'
  flags = fields.get('flags', '').split()
  widest = next((isa for isa in ('avx512f', 'avx2', 'avx', 'sse4_2') if isa in flags), None)
  return f'{name}, {widest.upper()}' if widest else name


def describe() -> str:
  """``'AMD EPYC, AVX512F (x86_64), 2 CPU cores, jax 0.10.2'``, without importing JAX (the
  PyTorch children of speed.py never load it)."""
  jax_version = importlib.metadata.version('jax')
  return f'{cpu_model()} ({platform.machine()}), {os.cpu_count()} CPU cores, jax {jax_version}'
