r"""The labeling page: a local web page for the current query (docs/labeling.md).

    python -m l2r_jax.label serve --config=C --workdir=W [--port=8765] [--host=127.0.0.1]

One page (``l2r_jax/static/``: HTML, CSS and JavaScript, no build step, nothing from elsewhere)
served by the standard library's threading HTTP server: classes by keyboard, pose joints and crowd
heads by clicks, "train and ask again" run in the background with its progress.

**One path for answers.** The page's marks become labels (:mod:`l2r_jax.annotate`) and its answers
pass :func:`l2r_jax.label.checked` and :func:`l2r_jax.label.teach_checked`, as a file given to
``label answer`` does: refused whole with the same lines, taught in one synced append to
``answers.jsonl`` before the page hears back. What is marked and not submitted is kept in the
browser and in ``WORKDIR/query/page_draft.json`` (atomically) as it is given, merged sample by
sample with what other pages open on the same query keep there.

**Safe by default** (:mod:`l2r_jax.page_http`): 127.0.0.1 unless ``--host`` says otherwise, every
request carrying the page's key (the address ``serve`` prints holds it), only the page and the
pool's own images served. Tabs and the command line take turns through the workdir's lock and
the answer log.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import sys
import threading
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple
from urllib import parse as urlparse

from absl import logging
import numpy as np

from l2r_jax import annotate
from l2r_jax import answers as answers_lib
from l2r_jax import errors
from l2r_jax import label as label_lib
from l2r_jax import learner as learner_lib
from l2r_jax import page_http
from l2r_jax import workdir as workdir_lib
from l2r_jax.errors import RequestRefused

DRAFT_FILE = 'page_draft.json'
DRAFT_LOCK = 'page_draft.lock'   # servers on one workdir merge the draft in turn
# Keys a class may take (in order), when the class names are not single keys themselves; the
# page's own keys (Enter, Space, Backspace, arrows) are never classes.
CLASS_KEYS = '1234567890abcdefghjklmnopqrtuvwxyz'


def class_keys(names: List[str]) -> List[Optional[str]]:
  """A key per class: the names themselves where each is one distinct letter or digit, else
  :data:`CLASS_KEYS` in order (None past them)."""
  lower = [n.lower() for n in names]
  if all(len(n) == 1 and n.isalnum() and n.isascii() for n in lower) and (
      len(set(lower)) == len(lower)):
    return lower
  return [CLASS_KEYS[k] if k < len(CLASS_KEYS) else None for k in range(len(names))]


def _query_id(query: Optional[Dict[str, Any]], pool_fingerprint: Optional[str]
              ) -> Optional[str]:
  """A query's name for the page (its pool, round, labels known and samples): drafts, the page's
  and the browser's, are bound to it. ``pool_fingerprint`` None: the name earlier releases gave
  it, without its pool (a draft kept under that name in the workdir is this query's: a workdir
  holds one pool)."""
  if query is None:
    return None
  named = [query['round'], query['num_labeled'], query['indices']]
  return hashlib.sha256(json.dumps(
      named if pool_fingerprint is None else [pool_fingerprint] + named).encode()).hexdigest()[:16]


def _mark_time(mark: Any) -> float:
  """When the page made ``mark`` (its ``t``, milliseconds); 0 for none."""
  t = mark.get('t') if isinstance(mark, dict) else None
  return t if isinstance(t, (int, float)) and not isinstance(t, bool) else 0


class Session:
  """One learner behind the page: its answers, rounds, drafts and images. ``busy`` is held while
  the learner works (one request at a time; a round trains in the background holding it)."""

  def __init__(self, config, workdir: str, learner: Optional[learner_lib.ActiveLearner] = None):
    self.learner = learner or learner_lib.ActiveLearner(config, workdir)
    ds = self.learner.dataset
    self.geometry = annotate.geometry(ds, self.learner.config.data)
    self.token = secrets.token_urlsafe(32)
    self._epoch = secrets.token_hex(4)   # in every image's address: no image cached by the
                                         # browser from another session is shown for this one
    self.busy = threading.Lock()
    self.draft_lock = threading.Lock()
    self.round: Optional[Dict[str, Any]] = None
    self.training: Optional[threading.Thread] = None   # the round's thread, while it trains
    self.last_seconds: Optional[float] = None
    self._predictions: Tuple[Any, Dict[int, Tuple[str, float]]] = (None, {})
    self._root = os.path.realpath(ds.source_root) if ds.source_root else None
    self._ids = ({i: k for k, i in enumerate(ds.pool_ids)}
                 if ds.pool_ids is not None and self._root else {})
    names = ds.class_names or [str(c) for c in range(ds.num_outputs)]
    self.class_names = [str(n) for n in names]

  def close(self) -> None:
    self.learner.close()

  # -- reading -------------------------------------------------------------------------------------

  def state(self) -> Dict[str, Any]:
    """What the page shows: the pending query, the task's names and keys, the rounds."""
    if not self.busy.acquire(blocking=False):
      return {'busy': True, 'training': self.progress()}
    try:
      return self._state()
    finally:
      self.busy.release()

  def _state(self) -> Dict[str, Any]:
    learner = self.learner
    status = learner.status()     # the workdir read: answers from any page or process
    query = learner.last_query    # read once: what is pending, its scores and its id agree
    pending = [] if query is None else [i for i in query['indices'] if not (
        learner.is_labeled(i) or learner.is_set_aside(i))]
    scores = {}
    if query is not None and query['scores'] is not None:
      scores = dict(zip(query['indices'], query['scores']))
    guesses = self._guesses(pending) if self.geometry.task == 'classification' else {}
    items = []
    for i in pending:
      item = {'index': i, 'id': learner.pool.ids[i], 'image': self.image_url(i),
              'score': scores.get(i)}
      if i in guesses:
        item['predicted'], item['probability'] = guesses[i]
      items.append(item)
    query_id = _query_id(query, learner.pool.fingerprint)
    return {
        'task': self.geometry.task, 'workdir': learner.workdir, 'classes': self.class_names,
        'keys': class_keys(self.class_names), 'joint_names': list(self.geometry.joint_names),
        'skeleton': [list(p) for p in self.geometry.skeleton],
        'input_hw': list(self.geometry.input_hw), 'items': items, 'query_id': query_id,
        'asked': 0 if query is None else len(query['indices']), 'left': len(pending),
        'labeled': status['labeled'], 'pool_size': status['pool_size'],
        'rounds': status['rounds'], 'strategy': query and query['strategy'],
        'results': [{'round': r['cycle'], 'labels': r['num_labeled'], 'metric': r['metric'],
                     'value': r.get('value')} for r in status['results']],
        'stop': status['stop']['stop'], 'draft': self._draft(query, pending),
        'training': self.progress(), 'busy': False}

  def _guesses(self, pending: List[int]) -> Dict[int, Tuple[str, float]]:
    """The model's class and its probability for each pending sample (from the second round)."""
    key = (self.learner.rounds, tuple(pending))
    if self._predictions[0] == key:
      return self._predictions[1]
    guesses = {}
    if pending and self.learner.rounds:
      rows = np.asarray(pending)
      p = self.learner.predict(self.learner.dataset.x_train[rows], preprocessed=True).probabilities
      guesses = {int(i): (self.class_names[int(c)], round(float(q), 3))
                 for i, c, q in zip(rows, p.argmax(-1), p.max(-1))}
    self._predictions = (key, guesses)
    return guesses

  def progress(self) -> Optional[Dict[str, Any]]:
    if self.round is None:
      return None
    out = dict(self.round)
    out['elapsed'] = round((out.get('ended') or time.time()) - out['started'], 1)
    return out

  # -- images --------------------------------------------------------------------------------------

  def image_url(self, index: int) -> str:
    """``/files/<id>`` for a sample whose file lies under the dataset's root, else
    ``/input/<index>``; versioned by the session and the file's size and time (``?v=``), so that
    a browser never shows a picture it cached for another workdir, session or file as this
    sample's."""
    sample_id = self.learner.pool.ids[index]
    path = os.path.join(self._root, sample_id) if sample_id in self._ids else None
    if path is not None and self._inside(path):
      with contextlib.suppress(OSError):   # gone since: its decoded input instead
        st = os.stat(path)
        return (f'/files/{urlparse.quote(sample_id)}'
                f'?v={self._epoch}-{st.st_size}-{st.st_mtime_ns}')
    return f'/input/{index}?v={self._epoch}'

  def _inside(self, path: str) -> bool:
    real = os.path.realpath(path)
    return real.startswith(os.path.join(self._root, '')) and os.path.isfile(real)

  def file_png(self, relative: str) -> bytes:
    """A pool file's image (``relative`` to the dataset's root, as the URL gave it), refused
    unless it is one of the pool's files, inside the root."""
    parts = relative.replace('\\', '/').split('/')
    if not self._root:
      raise RequestRefused(404, 'this dataset has no files; its inputs are at /input/<index>.')
    if ('\x00' in relative or relative.startswith(('/', '\\')) or os.path.isabs(relative)
        or '..' in parts or (len(relative) > 1 and relative[1] == ':')):
      raise RequestRefused(403, f'{relative!r}: only the dataset\'s own files are served (no '
                                '"..", no absolute paths).')
    index = self._ids.get(relative)
    if index is None:
      raise RequestRefused(404, f'{relative!r} is not a file of the pool.')
    path = os.path.realpath(os.path.join(self._root, relative))
    if not self._inside(path):
      raise RequestRefused(403, f'{relative!r} leads out of the dataset\'s root {self._root} '
                                '(a link); it is not served.')
    return annotate.sample_png(self.learner.dataset, index, path)

  def input_png(self, index: str) -> bytes:
    if not (index.isascii() and index.isdigit() and len(index) <= 12) or (
        int(index) >= self.learner.pool_size):
      raise RequestRefused(404, f'{index!r} is not a pool index '
                                f'(0 .. {self.learner.pool_size - 1}).')
    return annotate.sample_png(self.learner.dataset, int(index))   # reads only: no lock

  # -- changing ------------------------------------------------------------------------------------

  def answer(self, body: Any) -> Dict[str, Any]:
    """Teaches the page's answers: ``{"answers": [{"index", "id", and "label" (a class), "joints"
    [K, 3] (x, y, visible) or "points" [P, 2] (input pixels)}]}``; refused whole as
    ``label answer`` refuses a file."""
    given = body.get('answers') if isinstance(body, dict) else None
    if not isinstance(given, list) or not given:
      raise RequestRefused(400, 'give {"answers": [...]}, one object per answer.')
    answers, problems = [], []
    for k, a in enumerate(given, 1):
      if not isinstance(a, dict):
        problems.append((k, f'answer {k}: not an object.'))
        continue
      label = a.get('label')
      marks = a.get('joints', a.get('points'))
      if marks is not None and self.geometry.task != 'classification':
        try:
          label = self.geometry.label(marks)
        except (ValueError, TypeError) as e:
          problems.append((k, f'answer {k}, index {a.get("index")}: {e}'))
          continue
      answers.append(answers_lib.Answer(None, k, a.get('index'), a.get('id'), label))
    with self._working():
      done = label_lib.teach_checked(self.learner, 'the page\'s answers',
                                     *label_lib.checked(answers, problems, self.learner))
    return {'taught': done['taught'], 'left': len(done['left']),
            'message': f'{done["taught"]} label{"" if done["taught"] == 1 else "s"} taught; '
                       f'{len(done["left"])} of the query left.'}

  def labels(self, kind: str) -> bytes:
    """Every label known, and the samples set aside, as ``label labels`` writes them
    (:func:`l2r_jax.label.labels_text`; ``kind``: ``.csv`` or ``.jsonl``), the workdir read first
    (answers from any page or process)."""
    with self._working():
      self.learner.refresh()
      return label_lib.labels_text(self.learner, kind)[0].encode('utf-8')

  def set_aside(self, body: Any) -> Dict[str, Any]:
    """Sets the page's samples aside (no class fits, or none can be told; never asked again):
    ``{"samples": [{"index", "id"}]}``; refused whole if an index and its id disagree, or as
    :meth:`~l2r_jax.learner.ActiveLearner.set_aside` refuses."""
    given = body.get('samples') if isinstance(body, dict) else None
    if not isinstance(given, list) or not given or not all(isinstance(a, dict) for a in given):
      raise RequestRefused(400, 'give {"samples": [{"index": ..., "id": ...}, ...]}.')
    pool, indices, problems = self.learner.pool, [], []
    for k, a in enumerate(given, 1):
      i = a.get('index')
      if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < pool.size and (
          pool.ids[i] != a.get('id')):
        problems.append(f'sample {k}: index {i} is {pool.ids[i]!r} in this pool, not '
                        f'{a.get("id")!r}: reload the page.')
      indices.append(i)
    if problems:
      raise answers_lib.refusal(f'{answers_lib.count(len(problems))}; none was set aside:',
                                problems)
    with self._working():
      changed = self.learner.set_aside(indices)
      left = len(self.learner.pending)
    return {'set_aside': changed, 'left': left,
            'message': f'{changed} set aside (never asked again); {left} of the query left.'}

  def train(self) -> Dict[str, Any]:
    """Starts the round (train on the labels known, then ask again) in the background."""
    if not self.busy.acquire(blocking=False):
      if self.round is not None and not self.round['done']:
        raise RequestRefused(409, 'a round is training already; wait for it.')
      raise RequestRefused(409, 'answers are being taught; train again in a moment.')
    self.round = {'started': time.time(), 'ended': None, 'error': None, 'done': False,
                  'labels': len(self.learner.labeled[0]), 'estimate': self.last_seconds,
                  'message': f'training on {len(self.learner.labeled[0])} labels'}
    self.training = threading.Thread(target=self._train, daemon=True)
    self.training.start()
    return self.progress()

  def _train(self) -> None:
    r = self.round
    try:
      self.learner.refresh()   # answers another page or process gave since this one last read
      r['labels'] = len(self.learner.labeled[0])
      r['message'] = f'training on {r["labels"]} labels'
      if len(self.learner.pending):   # skipped ones left: train on what came, they stay asked
        record = self.learner.train()
        r['message'] = ('trained; the skipped samples are asked again' if record else
                        'no new labels to train on; answer the samples left')
      else:
        asked = self.learner.query()
        r['message'] = f'{len(asked)} samples asked'
      self.last_seconds = time.time() - r['started']
    except errors.Refusal as e:
      r['error'] = str(e)
    except Exception:  # pylint: disable=broad-except  (shown on the page, logged in full)
      logging.error('the round failed:\n%s', traceback.format_exc())
      r['error'] = 'the round failed with an error (the terminal running the page shows it).'
    finally:
      r['ended'], r['done'] = time.time(), True
      self.busy.release()

  def save_draft(self, body: Any) -> Dict[str, Any]:
    """Keeps what the page holds and has not submitted: ``{"query_id", "marks": {...}}``, merged
    sample by sample into the draft kept (the later mark by its ``t`` wins), so that two pages
    open on one query keep each other's marks."""
    if not isinstance(body, dict) or not isinstance(body.get('query_id'), str) or not isinstance(
        body.get('marks'), dict):
      raise RequestRefused(400, 'give {"query_id": ..., "marks": {...}}.')
    with self._draft_locked() as folder:
      learner = self.learner
      query = learner.last_query
      if body['query_id'] != _query_id(query, learner.pool.fingerprint):
        raise RequestRefused(409, 'this page shows a query that has been answered and replaced; '
                                  'reload the page for the one asked now.')
      kept = self._draft(query) or {}
      for index, mark in body['marks'].items():
        if _mark_time(mark) >= _mark_time(kept.get(index)):
          kept[index] = mark
      workdir_lib.write_atomic(workdir_lib.path_in(folder, DRAFT_FILE),
                               json.dumps({'query_id': body['query_id'], 'marks': kept}))
    return {'saved': True}

  @contextlib.contextmanager
  def _draft_locked(self):
    """The draft's turn, among this server's requests and other servers' on the workdir (an
    ``flock`` on ``query/page_draft.lock``, waited for: a merge takes milliseconds); the query
    folder."""
    with self.draft_lock:
      folder = workdir_lib.folder_in(self.learner.workdir, answers_lib.QUERY_FOLDER)
      os.makedirs(folder, exist_ok=True)
      fd = workdir_lib.open_refusing_links(workdir_lib.path_in(folder, DRAFT_LOCK),
                                           os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
      finally:
        os.close(fd)

  def _draft(self, query: Optional[Dict[str, Any]], pending: Optional[List[int]] = None
             ) -> Optional[Dict[str, Any]]:
    """The draft kept for ``query`` (under its name, or the name earlier releases gave it; its
    marks of the ``pending`` samples only, if given)."""
    path = workdir_lib.path_in(self.learner.workdir, answers_lib.QUERY_FOLDER, DRAFT_FILE)
    if query is None or not os.path.lexists(path):
      return None
    try:
      draft = json.loads(workdir_lib.read_text(path))
    except (OSError, ValueError):
      return None
    names = {_query_id(query, self.learner.pool.fingerprint), _query_id(query, None)}
    if not (isinstance(draft, dict) and draft.get('query_id') in names and isinstance(
        draft.get('marks'), dict)):
      return None
    if pending is None:
      return draft['marks']
    asked = {str(i) for i in pending}
    return {k: v for k, v in draft['marks'].items() if k in asked}

  @contextlib.contextmanager
  def _working(self):
    if not self.busy.acquire(timeout=30):
      raise RequestRefused(409, 'a round is training; answers are taken when it ends.')
    try:
      yield
    finally:
      self.busy.release()


def main(config, workdir: str, host: str = '127.0.0.1', port: int = 8765) -> None:
  """``label serve``: serves the page until interrupted."""
  session = Session(config, workdir)
  try:
    server = page_http.make_server(session, host, port)
    print(f'the labeling page: {page_http.address(host, server.server_address[1], session.token)}'
          '  (open it: it carries the page\'s key; Ctrl+C stops it; every answer is saved as it '
          'is submitted)', flush=True)
    if not page_http.loopback(host):
      print(f'note: --host={host}: the page listens to every computer that can reach this one on '
            f'port {server.server_address[1]} (over plain HTTP), and whoever is given its address '
            'can teach labels.',
            file=sys.stderr, flush=True)
    try:
      server.serve_forever()
    except KeyboardInterrupt:
      pass
    finally:
      server.server_close()
    _await_round(session)
  finally:
    session.close()


def _await_round(session: Session) -> None:
  """After Ctrl+C: lets a round that is training end (its model and query saved), so that the
  process never stops under the computation; a second Ctrl+C stops it at once, as a kill would
  (the round is trained again when the page or a command next runs)."""
  thread = session.training
  if thread is None or not thread.is_alive():
    return
  print('a round is training: the page stops when it ends and is saved (Ctrl+C again: at once, '
        'the round then trained again next time).', file=sys.stderr, flush=True)
  try:
    while thread.is_alive():
      thread.join(0.2)
  except KeyboardInterrupt:
    sys.stderr.flush()
    os._exit(130)   # pylint: disable=protected-access  (not under the running computation)
