r"""The labeling page in a headless Chromium: the time from "Train and ask again" to the next query
on the digits image folder, and a screenshot of each task's page.

    python benchmarks/label_page.py [--rounds 3] [--chromium /usr/bin/chromium]

Writes the README's digits folder (``examples/digits_folder.py``: 20 labeled, 1,280 to label),
serves ``examples/image_folder.py`` on it, and answers each query on the page by keyboard with
the folder's truth (``truth.csv``), then clicks "Train and ask again" and times until the next
query's images are on the page: the round (30 epochs on every label known, the test split
scored, the strategy's picks) and the page's update, as a person waits for them. Then the pose
and crowd pages (``examples/synthetic_to_label.py``) with joints and heads placed by clicks where
the stand-ins drew them. Writes ``benchmarks/results/label_page.md`` and ``docs/label_page_*.png``.
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import machine  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples import digits_folder  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples import image_folder  # pylint: disable=g-import-not-at-top,wrong-import-position
from examples import synthetic_to_label  # pylint: disable=g-import-not-at-top,wrong-import-position
from l2r_jax import data as data_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from l2r_jax import page_http  # pylint: disable=g-import-not-at-top,wrong-import-position
from l2r_jax import serve  # pylint: disable=g-import-not-at-top,wrong-import-position
from l2r_jax.data import synthetic_crowd  # pylint: disable=wrong-import-position


def serving(config, workdir):
  session = serve.Session(config, workdir)
  server = page_http.make_server(session, '127.0.0.1', 0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  return session, server, page_http.address('127.0.0.1', server.server_address[1], session.token)


def until(page, expression, timeout=1800):
  deadline = time.time() + timeout
  while not page.evaluate(expression):
    if time.time() > deadline:
      raise TimeoutError(expression)
    time.sleep(0.05)


def train_and_ask(page) -> float:
  """Seconds from the click to the next query's images on the page."""
  before = page.evaluate('JSON.stringify(l2r.state().items.map(it => it.index))')
  page.evaluate('document.getElementById("message").textContent = ""')
  started = time.time()
  page.click('#train')
  until(page, f'document.getElementById("message").textContent && '
              f'JSON.stringify(l2r.state().items.map(it => it.index)) !== {before!r} && '
              'document.querySelectorAll(".card img").length === l2r.state().items.length && '
              'Array.from(document.querySelectorAll(".card img")).every(i => i.complete)')
  seconds = time.time() - started
  assert page.inner_text('#message').startswith('Round done'), page.inner_text('#message')
  return seconds


def digits(browser, folder, rounds):
  truth = digits_folder.write_digits_folder(os.path.join(folder, 'digits'))
  config = image_folder.get_config()
  config.data.root = os.path.join(folder, 'digits')
  session, server, url = serving(config, os.path.join(folder, 'digits-work'))
  page = browser.new_page(viewport={'width': 1360, 'height': 980})
  page.goto(url)
  until(page, 'window.l2r && window.l2r.state()')
  times = [train_and_ask(page)]          # round 0: the 20 labels the folder came with
  for _ in range(rounds):
    for item in page.evaluate('l2r.state().items'):
      page.keyboard.press(str(truth[item['id']]))
    page.keyboard.press('Control+Enter')
    until(page, 'l2r.state().left === 0 && !document.querySelector(".card")')
    times.append(train_and_ask(page))
  for item in page.evaluate('l2r.state().items')[:3]:   # a few answered, the rest guessed
    page.keyboard.press(str(truth[item['id']]))
  page.screenshot(path=os.path.join(ROOT, 'docs', 'label_page_classification.png'))
  results = page.evaluate('l2r.state().results')
  page.close()
  server.shutdown()
  session.close()
  return times, results


def marked(browser, folder, task):
  config = synthetic_to_label.get_config(task)
  session, server, url = serving(config, os.path.join(folder, f'{task}-work'))
  page = browser.new_page(viewport={'width': 1280, 'height': 900})
  page.goto(url)
  until(page, 'window.l2r && window.l2r.state()')
  page.click('#train')                   # the first query: a random draw
  until(page, 'document.getElementById("marks")')
  index = page.evaluate('l2r.state().items[0].index')
  truth = data_lib.LOADERS[config.data.stand_in](config.data)
  (h, w), box = session.geometry.input_hw, page.locator('#marks').bounding_box()

  def click(x, y):                        # input pixels
    page.mouse.click(float(box['x'] + (x + 0.5) / w * box['width']),
                     float(box['y'] + (y + 0.5) / h * box['height']))

  if task == 'pose':                      # where the stand-in drew the joints (heatmap pixels)
    hm = session.geometry.label_hw
    for x, y, weight in truth.y_train[index]:
      if weight:
        click(x * w / hm[1], y * h / hm[0])
      else:
        page.keyboard.press('i')
  else:                                   # where the stand-in drew the heads
    for x, y in synthetic_crowd.crowd_sample(config.data.seed, 'train', index,
                                             config.data.image_size, render=False)['points']:
      click(x, y)
  page.screenshot(path=os.path.join(ROOT, 'docs', f'label_page_{task}.png'))
  page.close()
  server.shutdown()
  session.close()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--chromium', default=shutil.which('chromium') or 'chromium')
  parser.add_argument('--screenshots-only', action='store_true',
                      help='the pose and crowd pages\' screenshots only')
  args = parser.parse_args()
  from playwright import sync_api  # pylint: disable=g-import-not-at-top
  folder = tempfile.mkdtemp(prefix='l2r-page-')
  with sync_api.sync_playwright() as p:
    browser = p.chromium.launch(executable_path=args.chromium, args=['--no-sandbox'])
    if not args.screenshots_only:
      report(*digits(browser, folder, args.rounds))
    marked(browser, folder, 'pose')
    marked(browser, folder, 'crowd')
    browser.close()
  shutil.rmtree(folder, ignore_errors=True)


def report(times, results):
  rows = [f'| {r["round"]} | {r["labels"]} | {r["value"]:.4f} | {t:.1f} |'
          for r, t in zip(results, times)]
  lines = ['# The labeling page: train and ask again', '', machine.describe(), '',
           '`python benchmarks/label_page.py`: the digits folder (`examples/digits_folder.py`, '
           '`examples/image_folder.py`), each query answered on the page by keyboard; seconds '
           'from the click on "Train and ask again" to the next query\'s images on the page '
           '(round 0 includes compiling the programs).', '',
           '| round | labels | test accuracy | train and ask again (s) |', '|---|---|---|---|',
           *rows, '']
  with open(os.path.join(ROOT, 'benchmarks', 'results', 'label_page.md'), 'w') as f:
    f.write('\n'.join(lines))
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
