"""One process of a two-process run on localhost (see test_experiment.py).

    python tests/multiprocess_worker.py PORT PROCESS_ID WORKDIR

Prints, as JSON, the labeled set this process ends with for each strategy.
"""
import json
import sys

import jax

from configs import mnist1d
from l2r_jax import experiment


def main(port, process_id, workdir):
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(f'localhost:{port}', num_processes=2, process_id=process_id)
  assert jax.process_count() == 2 and jax.device_count() == 2
  config = mnist1d.get_config('smoke')
  config.strategies = ('coreset', 'vaal')
  config.vaal.iterations = 4   # its selection need not be good, only the same
  exp = experiment.make_experiment(config)
  labeled = {s: experiment.run_one(exp, workdir, s, 0).labeled.tolist()
             for s in config.strategies}
  print('LABELED ' + json.dumps(labeled), flush=True)


if __name__ == '__main__':
  main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
