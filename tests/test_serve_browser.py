"""The labeling page end to end in a real headless Chromium (the system's, driven by Playwright):
classes by keyboard, joints and heads by clicks, a refusal shown, the page and the server killed
mid-session, train and ask again; the answer log against what `label answer` writes."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
from playwright import sync_api
import pytest

from examples import digits_folder
from examples import synthetic_to_label
from l2r_jax import answers
from l2r_jax import label
from l2r_jax import learner as learner_lib
from l2r_jax import page_http
from l2r_jax import serve
from l2r_jax.data import density
from tests import test_serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = next((p for p in (os.environ.get('L2R_JAX_CHROMIUM'), shutil.which('chromium'),
                             shutil.which('chromium-browser'), shutil.which('google-chrome'))
                 if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason='no Chromium here (apt-get install chromium chromium-driver, as '
                             '.ci/run does; or L2R_JAX_CHROMIUM=path/to/chrome)')


@pytest.fixture(scope='module')
def browser():
  with sync_api.sync_playwright() as p:
    chromium = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
    yield chromium
    chromium.close()


def serving(config, workdir):
  session = serve.Session(config, workdir)
  server = page_http.make_server(session, '127.0.0.1', 0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  return session, server, page_http.address('127.0.0.1', server.server_address[1], session.token)


def stop(session, server):
  server.shutdown()
  server.server_close()
  session.close()


def open_page(browser, url):
  context = browser.new_context(viewport={'width': 1280, 'height': 900})
  page = context.new_page()
  errors = []
  page.on('pageerror', lambda e: errors.append(str(e)))
  # A refusal is an answer (shown on the page); any other error is the page's.
  page.on('console', lambda m: errors.append(m.text) if m.type == 'error' and '(Unprocessable'
          not in m.text else None)
  page.goto(url)
  until(page, 'window.l2r && window.l2r.state()')
  return context, page, errors


def until(page, expression, timeout=60):
  """Waits for ``expression`` (JavaScript) to be truthy in the page, polled from here: the page's
  policy forbids evaluating strings inside it, which wait_for_function does."""
  deadline = time.time() + timeout
  while not page.evaluate(expression):
    assert time.time() < deadline, f'waited {timeout} s for {expression}'
    time.sleep(0.1)


def submit(page):
  """Ctrl+Enter, and the page's answer to it."""
  page.evaluate('document.getElementById("message").textContent = ""')
  page.keyboard.press('Control+Enter')
  until(page, 'document.getElementById("message").textContent')
  return page.inner_text('#message')


def train_and_ask(page):
  """Clicks "Train and ask again" and waits for the round (its progress shown) to end, and for the
  page to show what the server holds after it."""
  page.evaluate('document.getElementById("message").textContent = ""')
  before = page.evaluate('(s => s && s.training && s.training.started)(window.l2r.state())')
  page.click('#train')
  until(page, 'document.getElementById("message").textContent', 600)
  until(page, f'(s => s && s.training && s.training.done && s.training.started !== '
              f'{json.dumps(before)})(window.l2r.state())', 120)
  message = page.inner_text('#message')
  assert message.startswith('Round done in '), message
  assert page.locator('#progress').is_hidden()
  # What the progress display showed last: the round's message and its time.
  assert re.fullmatch(r'.+: \d+\.\d s.*', page.text_content('#progress-text'))


def draft_saved(page):
  until(page, 'fetch("/api/state").then(r => r.json()).then(s => '
              'JSON.stringify(s.draft) === JSON.stringify(window.l2r.marks()))')


def _digits(tmp_path):
  """A digits folder of 40 images to label and 20 test ones, nothing labeled: the truth by id, its
  config (6 asked a round) and a workdir beside it."""
  truth = digits_folder.write_digits_folder(str(tmp_path / 'digits'), labeled=0, test=20)
  for sample_id in sorted(truth)[40:]:
    os.remove(tmp_path / 'digits' / sample_id)
  return truth, test_serve.digits_config(tmp_path / 'digits'), str(tmp_path / 'work')


def test_classes_by_keyboard_a_refusal_shown_and_a_killed_page_loses_nothing(browser, tmp_path):
  truth, config, work = _digits(tmp_path)
  session, server, url = serving(config, work)
  try:
    context, page, errors = open_page(browser, url)
    train_and_ask(page)                 # the first query: a random draw of 6
    cards = page.locator('.card')
    assert cards.count() == 6
    ids = [cards.nth(k).get_attribute('data-index') for k in range(6)]
    ids = [session.learner.pool.ids[int(i)] for i in ids]
    for k, sample_id in enumerate(ids):
      page.keyboard.press(' ' if k == 4 else str(truth[sample_id]))   # the fifth skipped
    assert page.inner_text('#count') == '6 asked · 5 answered · 1 skipped · 0 left'
    assert page.locator('.card.focus').get_attribute('data-index') == str(
        session.learner.pool.index_of(ids[5]))
    # A malformed submission: refused whole, the refusal shown on the page.
    page.evaluate('l2r.submit([{index: 0, id: "unlabeled/none.png", label: "3"}])')
    page.wait_for_selector('#message.error')
    assert re.search(r"the page's answers: 1 problem; nothing of it was taught:\n"
                     r"answer 1: id 'unlabeled/none.png' is not a sample of this pool\.",
                     page.inner_text('#message'))
    twin = str(tmp_path / 'twin')
    shutil.copytree(work, twin)
    submit(page)
    assert page.inner_text('#message') == '5 labels taught; 1 of the query left.'
    assert page.locator('.card').count() == 1
    table = tmp_path / 'same.csv'
    table.write_text('id,label\n' + ''.join(f'{i},{truth[i]}\n' for k, i in enumerate(ids)
                                            if k != 4))
    with learner_lib.ActiveLearner(config, twin) as learner:
      label.teach_checked(learner, str(table), *label.read_answers(str(table), learner))
    log = open(os.path.join(work, answers.ANSWERS_FILE)).read()
    assert log == open(os.path.join(twin, answers.ANSWERS_FILE)).read()
    # The labels out, by the side panel's link: the five taught, in the pool's order.
    with page.expect_download() as download:
      page.click('#labels-csv')
    rows = open(download.value.path(), encoding='utf-8-sig').read().splitlines()
    assert download.value.suggested_filename == 'labels.csv' and [
        r.split(',')[:5] for r in rows[1:]] == [
            [str(i), k, os.path.join(config.data.root, k), str(truth[k]), 'answered'] for i, k in
            sorted((session.learner.pool.index_of(k), k) for n, k in enumerate(ids) if n != 4)]
    # One that fits no class: Delete sets it aside (never asked again), undone, then set aside by
    # its button.
    aside = page.locator('.card').first
    aside_index = int(aside.get_attribute('data-index'))
    page.keyboard.press('Delete')
    assert page.inner_text('#count') == '1 asked · 0 answered · 0 skipped · 1 set aside · 0 left'
    aside.locator('button[data-aside]').click()
    assert page.inner_text('#count') == '1 asked · 0 answered · 0 skipped · 1 left'
    aside.locator('button[data-aside]').click()
    assert submit(page) == '1 set aside (never asked again); 0 of the query left.'
    assert page.locator('.card').count() == 0
    assert session.learner.set_aside_samples.tolist() == [aside_index]
    assert session.learner.set_aside([aside_index], aside=False) == 1   # taken back, to go on
    page.reload()
    until(page, 'window.l2r && window.l2r.state() && document.querySelectorAll(".card").length')
    # The skipped one answered, not submitted; the page killed: a new browser has it back.
    page.keyboard.press(str((truth[ids[4]] + 1) % 10))
    draft_saved(page)
    context.close()
    context, page, more = open_page(browser, url)
    chosen = page.locator('.card.answered button.on')
    assert chosen.count() == 1 and chosen.get_attribute('data-class') == str(
        (truth[ids[4]] + 1) % 10)
    assert not errors + more, errors + more
    # A mark whose saving failed (the server out of reach) reaches the server when the page loads.
    page.route('**/api/draft', lambda route: route.abort())
    page.keyboard.press(str(truth[ids[4]]))
    page.wait_for_selector('#message.error')
    assert 'could not be saved on the server' in page.inner_text('#message')
    page.unroute('**/api/draft')
    page.reload()
    until(page, 'window.l2r && window.l2r.state()')
    draft_saved(page)
    draft = page.evaluate('fetch("/api/state").then(r => r.json()).then(s => s.draft)')
    assert [m['label'] for m in draft.values()] == [str(truth[ids[4]])]
    context.close()
  finally:
    stop(session, server)


def test_a_cleared_class_a_change_while_answers_are_on_their_way_and_a_busy_server(
    browser, tmp_path):
  truth, config, work = _digits(tmp_path)
  session, server, url = serving(config, work)
  try:
    context, page, _ = open_page(browser, url)
    train_and_ask(page)
    cards = page.locator('.card')
    ids = [int(cards.nth(k).get_attribute('data-index')) for k in range(6)]
    page.keyboard.press('1')
    page.keyboard.press('2')
    draft_saved(page)
    # The second class cleared while the server is out of reach, the page then opened again: the
    # clearing outweighs the class the server kept, and reaches the server.
    page.route('**/api/draft', lambda route: route.abort())
    page.keyboard.press('ArrowLeft')
    page.keyboard.press('Backspace')
    page.wait_for_selector('#message.error')
    page.unroute('**/api/draft')
    page.reload()
    until(page, 'window.l2r && window.l2r.state()')
    assert page.inner_text('#count') == '6 asked · 1 answered · 0 skipped · 5 left'
    assert page.locator(f'.card[data-index="{ids[1]}"] button.on').count() == 0
    draft_saved(page)
    # A submission held on its way: its image cannot change meanwhile, nor be submitted twice.
    held = []
    page.route('**/api/answers', lambda route: held.append(route))
    page.keyboard.press('Control+Enter')
    for _ in range(600):
      if held:
        break
      page.wait_for_timeout(100)
    assert held, 'the submission did not leave the page'
    page.keyboard.press('ArrowLeft')
    page.keyboard.press('5')
    assert 'on its way to the server' in page.inner_text('#message')
    assert page.evaluate(f'window.l2r.marks()["{ids[0]}"].label') == '1'
    page.keyboard.press('Control+Enter')
    assert page.inner_text('#message').startswith('The answers are on their way')
    assert len(held) == 1
    page.evaluate('document.getElementById("message").textContent = ""')
    # The page then fails to load what is left: the reply is kept beside the failure.
    page.route('**/api/state', lambda route: route.abort())
    held[0].continue_()
    page.wait_for_selector('#message.error')
    assert page.inner_text('#message').startswith(
        '1 label taught; 5 of the query left. The page could not show what is left (')
    assert page.inner_text('#message').endswith('): reload it.')
    page.unroute('**/api/state')
    log = [json.loads(l) for l in open(os.path.join(work, answers.ANSWERS_FILE))]
    assert [(r['index'], r['label']) for r in log] == [(ids[0], '1')]
    context.close()
    # A server started anew (no round in it), busy with another request when the page opens: the
    # page looks again until it is free, then shows the query, its buttons enabled.
    stop(session, server)
    session, server, url = serving(config, work)
    with session.busy:
      context = browser.new_context()
      page = context.new_page()
      page.goto(url)
      page.wait_for_timeout(1500)
      assert page.evaluate('window.l2r.state()') is None
    until(page, 'window.l2r.state()')
    assert page.locator('#progress').is_hidden() and page.is_enabled('#train')
    assert page.inner_text('#count') == '5 asked · 0 answered · 0 skipped · 5 left'
    context.close()
    # Another process holds the workdir (a command line training) when the page opens: the page
    # says so and looks again, and shows the query once the workdir is free.
    from l2r_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
    with workdir_lib.lock(work):
      context = browser.new_context()
      page = context.new_page()
      page.goto(url)
      page.wait_for_selector('#message.error')
      assert 'in use by process' in page.inner_text('#message')
      assert page.inner_text('#message').endswith('This page looks again every 3 s.')
    until(page, 'window.l2r.state()')
    assert page.inner_text('#count') == '5 asked · 0 answered · 0 skipped · 5 left'
    assert page.inner_text('#message') == ''     # the workdir free: its message done with
    # A teammate answers one of them otherwise meanwhile: the submission is refused, the page
    # shows what is left, and the rest goes in again.
    left = [int(page.locator('.card').nth(k).get_attribute('data-index')) for k in range(5)]
    for k in left:
      page.keyboard.press(str(truth[session.learner.pool.ids[k]]))
    draft_saved(page)
    with learner_lib.ActiveLearner(config, work) as teammate:
      teammate.teach([left[0]], [(truth[teammate.pool.ids[left[0]]] + 1) % 10])
    page.keyboard.press('Control+Enter')
    page.wait_for_selector('#message.error')
    assert 'labeled already' in page.inner_text('#message')
    until(page, 'document.querySelectorAll(".card").length === 4')
    assert 'labeled already' in page.inner_text('#message')
    submit(page)
    assert page.inner_text('#message') == '4 labels taught; 0 of the query left.'
    context.close()
  finally:
    stop(session, server)


def test_the_models_guess_is_an_answer_only_once_confirmed(browser, tmp_path):
  truth, config, work = _digits(tmp_path)
  session, server, url = serving(config, work)
  try:
    context, page, errors = open_page(browser, url)
    train_and_ask(page)
    for item in page.evaluate('l2r.state().items'):
      page.keyboard.press(str(truth[item['id']]))
    assert submit(page) == '6 labels taught; 0 of the query left.'
    train_and_ask(page)             # a round trained: the model's class outlined on each card
    assert page.locator('.card button.guess').count() == 6
    assert page.locator('.card button.on').count() == 0
    assert page.inner_text('#count') == '6 asked · 0 answered · 0 skipped · 6 left'
    assert submit(page) == 'Nothing to submit yet: answer an image first.'
    first = page.evaluate('l2r.state().items[0]')
    page.keyboard.press('Enter')    # confirmed: now an answer
    assert page.inner_text('#count') == '6 asked · 1 answered · 0 skipped · 5 left'
    assert submit(page) == '1 label taught; 5 of the query left.'
    log = [json.loads(l) for l in open(os.path.join(work, answers.ANSWERS_FILE))]
    assert (log[-1]['index'], log[-1]['label']) == (first['index'], first['predicted'])
    assert not errors, errors
    context.close()
  finally:
    stop(session, server)


def _mark(page, fractions, invisible=()):
  box = page.locator('#marks').bounding_box()
  placed = []
  for j, (fx, fy) in enumerate(fractions):
    if j in invisible:
      page.keyboard.press('i')
      continue
    x, y = round(box['x'] + fx * box['width']), round(box['y'] + fy * box['height'])
    page.mouse.click(x, y)
    placed.append(((x - box['x']) / box['width'], (y - box['y']) / box['height']))
  return placed


@pytest.mark.slow
@pytest.mark.parametrize('task', ['pose', 'crowd'])
def test_joints_and_heads_by_clicks_then_train_and_ask_again(browser, tmp_path, task):
  config = synthetic_to_label.get_config(f'{task}_smoke')
  config.strategies = ('random',)
  config.al.update(initial=2, budget=2)
  config.train.batch_size = 2
  work = str(tmp_path / 'work')
  session, server, url = serving(config, work)
  rng = np.random.default_rng(0)
  try:
    context, page, errors = open_page(browser, url)
    train_and_ask(page)
    assert not page.is_visible('#labels-csv')   # a table holds no joints or heads: JSON lines
    (h, w) = session.geometry.input_hw
    expected = {}
    for k in range(2):
      index = session.learner.last_query['indices'][k]
      page.click(f'.strip button:nth-child({k + 1})')
      if task == 'pose':
        assert page.inner_text('#next-joint') == 'click: right ankle (1 of 16)'
        placed = iter(_mark(page, rng.uniform(0.05, 0.95, (16, 2)), invisible=(9,)))
        assert page.locator('#marks line').count() == 14    # 15 bones, less the one to the head top
        label_value = np.zeros((16, 3))
        hm = session.geometry.label_hw
        for j in range(16):
          if j != 9:
            fx, fy = next(placed)
            xy = np.array([fx * w - 0.5, fy * h - 0.5]) * [hm[1] / w, hm[0] / h]
            label_value[j] = (*xy, float(np.all((xy >= -0.5) & (xy < np.array(hm) - 0.5))))
      else:
        placed = _mark(page, rng.uniform(0.05, 0.95, (3 + k, 2)))
        _mark(page, [placed[0]])                         # a click on a head removes it
        assert page.inner_text('#head-count') == f'{2 + k} heads'
        points = np.array([[fx * w - 0.5, fy * h - 0.5] for fx, fy in placed[1:]])
        label_value = config.data.density_scale * density.density_map(
            points, session.geometry.label_hw, config.data.sigma, h // session.geometry.label_hw[0])
        page.keyboard.press('Enter')
      expected[session.learner.pool.ids[index]] = label_value
    submit(page)
    assert page.inner_text('#message') == '2 labels taught; 0 of the query left.'
    log = [json.loads(l) for l in open(os.path.join(work, answers.ANSWERS_FILE))]
    assert sorted(r['id'] for r in log) == sorted(expected)
    for record in log:
      np.testing.assert_allclose(record['label'], expected[record['id']], rtol=1e-5, atol=1e-5)
    # The same answers through `label answer` (JSON lines) write the same log.
    twin_answers = tmp_path / 'same.jsonl'
    twin_answers.write_text(''.join(json.dumps({'id': r['id'], 'label': r['label']}) + '\n'
                                    for r in log))
    train_and_ask(page)                  # trains on the 2, asks 2 more; the curve has its point
    page.wait_for_selector('#curve circle', timeout=60_000)   # drawn once the state is read back
    assert page.locator('#curve circle').count() == 1
    assert 'round 0: 2 labels' in page.inner_text('#rounds')
    assert page.locator('.strip button').count() == 2
    # The answered query's marks are gone from the browser's storage; nothing marked on this one.
    assert page.evaluate('Object.keys(localStorage).filter((k) => k.startsWith("l2r-jax:"))') == []
    assert session.learner.last_query['indices'][0] not in expected
    assert not errors, errors
    context.close()
  finally:
    stop(session, server)


@pytest.mark.slow
def test_a_server_killed_mid_session_loses_nothing(browser, tmp_path):
  truth = digits_folder.write_digits_folder(str(tmp_path / 'digits'), labeled=0, test=20)
  for sample_id in sorted(truth)[40:]:
    os.remove(tmp_path / 'digits' / sample_id)
  config_file = tmp_path / 'config.py'
  config_file.write_text(
      'from tests import test_serve\n'
      f'def get_config():\n  return test_serve.digits_config({str(tmp_path / "digits")!r})\n')
  command = [sys.executable, '-m', 'l2r_jax.label', 'serve', f'--config={config_file}',
             f'--workdir={tmp_path / "work"}', '--port=0']

  def start():
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=ROOT))
    line = process.stdout.readline()
    return process, re.search(r'http://\S+/\?token=\S+', line).group(0)

  process, url = start()
  try:
    context, page, _ = open_page(browser, url)
    train_and_ask(page)
    cards = page.locator('.card')
    ids = [int(cards.nth(k).get_attribute('data-index')) for k in range(6)]
    for k in range(3):
      page.keyboard.press(str(k))
    # Two more marked while the submission is on its way and the page reloads its state.
    page.evaluate('document.getElementById("message").textContent = ""')
    page.keyboard.press('Control+Enter')
    for k in range(3, 5):
      page.keyboard.press(str(k))
    until(page, 'document.getElementById("message").textContent')
    draft_saved(page)
    process.send_signal(signal.SIGKILL)     # no goodbye
    process.wait()
    context.close()
    process, url = start()
    context, page, _ = open_page(browser, url)
    assert page.inner_text('#count') == '3 asked · 2 answered · 0 skipped · 1 left'
    answered = page.locator('.card.answered button.on')
    assert [answered.nth(k).get_attribute('data-class') for k in range(2)] == ['3', '4']
    log = [json.loads(l) for l in open(tmp_path / 'work' / answers.ANSWERS_FILE)]
    assert [(r['index'], r['label']) for r in log] == [(ids[k], str(k)) for k in range(3)]
    context.close()
  finally:
    process.kill()
    process.wait()
