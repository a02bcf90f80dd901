"""The labeling page's server, by HTTP: what it serves and refuses, answers through the one check
into the one log, drafts kept, several writers on one workdir."""
import http.client
import json
import os
import shutil
import threading
import time
import types

import pytest

from examples import digits_folder
from examples import image_folder
from l2r_jax import answers
from l2r_jax import label
from l2r_jax import learner as learner_lib
from l2r_jax import page_http
from l2r_jax import serve


def digits_config(root):
  config = image_folder.get_config('smoke')
  config.data.root = str(root)
  config.data.classes = tuple(str(k) for k in range(10))
  config.al.update(initial=6, budget=6)
  return config


@pytest.fixture
def page(tmp_path):
  """A digits folder with nothing labeled (the first query is a random draw: nothing trains), a
  file outside it and a link to it among the pool's images, and its page served on a free port."""
  truth = digits_folder.write_digits_folder(str(tmp_path / 'digits'), labeled=0, test=20)
  for sample_id in sorted(truth)[40:]:
    os.remove(tmp_path / 'digits' / sample_id)
  shutil.copy(tmp_path / 'digits' / 'unlabeled' / '0000.png', tmp_path / 'secret.png')
  os.symlink(tmp_path / 'secret.png', tmp_path / 'digits' / 'unlabeled' / 'zz-link.png')
  config = digits_config(tmp_path / 'digits')
  session = serve.Session(config, str(tmp_path / 'work'))
  server = page_http.make_server(session, '127.0.0.1', 0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  yield Page(server.server_address[1], session), config, truth, tmp_path
  server.shutdown()
  server.server_close()
  session.close()


class Page:
  def __init__(self, port, session):
    self.port, self.session = port, session

  def request(self, method, path, body=None, token=True, headers=None):
    connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=120)
    sent = {'Content-Type': 'application/json'} if body is not None else {}
    if token:
      sent[page_http.TOKEN_HEADER] = self.session.token
    sent.update(headers or {})
    connection.request(method, path, None if body is None else json.dumps(body), sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader('Content-Type', '')
    return response.status, (json.loads(data) if kind == 'application/json' else data), response

  def state(self):
    return self.request('GET', '/api/state')[1]

  def train(self):
    status, body, _ = self.request('POST', '/api/train', {})
    assert status == 202, body
    while not self.request('GET', '/api/progress')[1]['training']['done']:
      time.sleep(0.1)
    return self.request('GET', '/api/progress')[1]['training']


def test_the_page_and_the_pools_files_are_served_and_nothing_changes_without_the_token(page):
  p, _, truth, tmp_path = page
  status, html, response = p.request('GET', '/')
  assert status == 200 and f'content="{p.session.token}"'.encode() in html
  assert "frame-ancestors 'none'" in response.getheader('Content-Security-Policy')
  assert response.getheader('X-Frame-Options') == 'DENY'
  assert p.request('GET', '/static/app.js')[0] == 200
  for path in ('/static/../serve.py', '/static/index.html', '/api/nothing'):
    assert p.request('GET', path)[0] == 404, path
  before = p.state()
  assert before['items'] == [] and before['asked'] == 0
  answer = {'answers': [{'index': 0, 'label': '3'}]}
  for headers, token in (({}, False), ({page_http.TOKEN_HEADER: 'guess'}, False)):
    status, body, _ = p.request('POST', '/api/answers', answer, token=token, headers=headers)
    assert status == 403 and 'lacks the page\'s key' in body['refused']
    assert p.request('POST', '/api/train', {}, token=token, headers=headers)[0] == 403
  status, body, _ = p.request('POST', '/api/answers', answer,
                              headers={'Origin': 'http://evil.example'})
  assert status == 403 and 'Origin' in body['refused']
  # A page of another site reaching this one by a name it controls (DNS rebinding): refused.
  status, body, _ = p.request('GET', '/api/state', headers={'Host': 'evil.example:80'})
  assert status == 403 and 'naming this computer only' in body['refused']
  status, body, _ = p.request('POST', '/api/answers', answer,
                              headers={'Content-Type': 'text/plain'})
  assert status == 415
  for length in ('abc', '-5', '1e3'):
    status, body, _ = p.request('POST', '/api/answers', answer,
                                headers={'Content-Length': length})
    assert status == 400 and f'Content-Length {length!r} is not a number' in body['refused']
  work = p.session.learner.workdir
  assert not os.path.exists(os.path.join(work, answers.ANSWERS_FILE))
  assert not os.path.exists(os.path.join(work, answers.QUERY_FILE))
  # Only the pool's own files are served.
  first = sorted(truth)[0]
  status, png, response = p.request('GET', '/files/' + first)
  assert status == 200 and png.startswith(b'\x89PNG') and response.getheader(
      'Content-Type') == 'image/png'
  refused = {
      '/files/../secret.png': 403, '/files/unlabeled/../../secret.png': 403,
      '/files/%2e%2e/secret.png': 403, '/files/%2Fetc%2Fpasswd': 403, '/files//etc/passwd': 403,
      '/files/unlabeled%2F..%2F..%2Fsecret.png': 403,
      '/files/truth.csv': 404,                        # under the root, not a pool file
      '/files/unlabeled/zz-link.png': 403,            # a pool file: a link out of the root
      '/input/999': 404, '/input/-1': 404, '/input/..%2Fx': 404}
  for path, expected in refused.items():
    status, body, _ = p.request('GET', path)
    assert status == expected, (path, status, body)
  link = p.session.learner.pool.index_of('unlabeled/zz-link.png')
  assert p.session.image_url(link).startswith(f'/input/{link}?v=')  # from its decoded input
  assert p.request('GET', f'/input/{link}')[0] == 200
  assert p.session.image_url(0).startswith('/files/' + p.session.learner.pool.ids[0] + '?v=')
  # A pool file damaged after the pool was loaded: refused by name, the server answering on.
  (tmp_path / 'digits' / first).write_bytes(b'garbage')
  status, body, _ = p.request('GET', '/files/' + first)
  assert status == 422 and f'{first} can no longer be read (' in body['refused']
  assert p.request('GET', '/api/state')[0] == 200


def test_every_route_needs_the_pages_key_which_its_address_trades_for_a_cookie(page):
  p, _, truth, _ = page
  first = sorted(truth)[0]
  # Another user of this computer, or a page of another site reaching it by a name it rebound:
  # nothing without the key, not the page, its state, its images or its script.
  for path in ('/', '/index.html', '/api/state', '/api/progress', '/static/app.js',
               '/files/' + first, '/input/0'):
    status, body, _ = p.request('GET', path, token=False)
    assert status == 403 and 'lacks the page\'s key: open the address' in body['refused'], path
  assert p.request('GET', '/favicon.ico', token=False)[0] == 204
  status, body, _ = p.request('GET', '/?token=guess', token=False)
  assert status == 403 and 'key is not the page\'s' in body['refused']
  # Opened in a browser (it asks for HTML): the refusal as a page, not as JSON.
  status, body, response = p.request('GET', '/?token=gu<e>ss', token=False,
                                     headers={'Accept': 'text/html,*/*'})
  assert status == 403 and response.getheader('Content-Type') == 'text/html; charset=utf-8'
  assert b'<p>' in body and b'key is not the page&#x27;s' in body and b'<e>' not in body
  # The address `label serve` prints: a cookie of this server's, and the page at / .
  url = page_http.address('127.0.0.1', p.port, p.session.token)
  assert url == f'http://127.0.0.1:{p.port}/?token={p.session.token}'
  status, _, response = p.request('GET', url[url.index('/?'):], token=False)
  assert status == 303 and response.getheader('Location') == '/'
  cookie = response.getheader('Set-Cookie')
  name = page_http.cookie_name(p.session.token)
  assert cookie.startswith(f'{name}={p.session.token}; ') and 'HttpOnly' in cookie
  assert name != page_http.cookie_name(serve.secrets.token_urlsafe(32))  # one per server
  jar = {'Cookie': f'other=1; {name}={p.session.token}'}
  status, html, _ = p.request('GET', '/', token=False, headers=jar)
  assert status == 200 and f'content="{p.session.token}"'.encode() in html
  assert p.request('GET', '/files/' + first, token=False, headers=jar)[0] == 200
  assert p.request('GET', '/api/state', token=False,
                   headers={'Cookie': f'{name}=guess'})[0] == 403
  # The cookie alone changes nothing: a change needs the key in the page's own header.
  status, body, _ = p.request('POST', '/api/train', {}, token=False, headers=jar)
  assert status == 403 and 'X-L2R-Token header' in body['refused']
  # A forwarded port (ssh -L 9000:localhost:PORT) names this computer; another name does not.
  for host in ('localhost:9000', '127.0.0.1', '[::1]:80'):
    assert p.request('GET', '/api/state', headers={'Host': host})[0] == 200, host
  for host in ('evil.example:%d' % p.port, '127.0.0.1@evil.example', ''):
    assert p.request('GET', '/api/state', headers={'Host': host})[0] == 403, host


def test_image_addresses_change_with_the_session_and_the_file_so_no_cached_picture_is_shown(
    page):
  p, config, truth, tmp_path = page
  first = sorted(truth)[0]
  index = p.session.learner.pool.index_of(first)
  url = p.session.image_url(index)
  assert url.startswith(f'/files/{first}?v=') and p.session.image_url(index) == url
  status, png, response = p.request('GET', url)
  assert status == 200 and png.startswith(b'\x89PNG')
  assert 'max-age' in response.getheader('Cache-Control')     # kept: its address is its version
  # The file replaced under its name (a camera reusing IMG_0001.JPG): another address.
  shutil.copy(tmp_path / 'digits' / sorted(truth)[1], tmp_path / 'digits' / first)
  os.utime(tmp_path / 'digits' / first, ns=(1, 1))
  assert p.session.image_url(index) != url
  # Another session (another workdir, or this one served again): other addresses throughout.
  other = serve.Session(config, str(tmp_path / 'other-work'))
  try:
    assert other.image_url(index).split('?')[0] == p.session.image_url(index).split('?')[0]
    assert other.image_url(index) != p.session.image_url(index)
    assert other.image_url(3).split('?')[0] == p.session.image_url(3).split('?')[0]
    assert other.image_url(3) != p.session.image_url(3)
  finally:
    other.close()


def test_a_request_the_server_fails_on_or_that_stalls_gets_an_answer_and_the_page_goes_on(
    page, monkeypatch):
  p, _, _, _ = page
  from l2r_jax import errors  # pylint: disable=g-import-not-at-top
  for index in ('²', '9' * 5000):   # a digit to str.isdigit; past int()'s digits
    with pytest.raises(errors.RequestRefused, match='is not a pool index') as refused:
      p.session.input_png(index)
    assert refused.value.status == 404
  monkeypatch.setattr(p.session, 'progress', lambda: 1 / 0)
  status, body, _ = p.request('GET', '/api/progress')
  assert status == 500 and 'the server failed on this request' in body['refused']
  monkeypatch.undo()
  monkeypatch.setattr(page_http.PageHandler, 'timeout', 0.5)
  import socket  # pylint: disable=g-import-not-at-top
  with socket.create_connection(('127.0.0.1', p.port), timeout=30) as stalled:
    stalled.sendall(b'POST /api/draft HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: '
                    b'application/json\r\nContent-Length: 100\r\n' + page_http.TOKEN_HEADER.encode()
                    + b': ' + p.session.token.encode() + b'\r\n\r\n{"')
    reply = b''
    while chunk := stalled.recv(4096):   # until the server closes the connection
      reply += chunk
    reply = reply.decode()
  assert reply.startswith('HTTP/1.0 408') and 'did not come in 0.5 s' in reply
  assert p.request('GET', '/api/state')[0] == 200


def test_servers_on_ipv6_and_ipv4_in_one_process_each_keep_their_family():
  import socket  # pylint: disable=g-import-not-at-top
  from l2r_jax import errors  # pylint: disable=g-import-not-at-top
  try:
    six = page_http.make_server(None, '::1', 0)
  except errors.ServeError:
    pytest.skip('this computer has no IPv6 loopback')
  four = page_http.make_server(None, '127.0.0.1', 0)
  try:
    assert (six.address_family, four.address_family) == (socket.AF_INET6, socket.AF_INET)
  finally:
    six.server_close()
    four.server_close()


def test_a_label_taught_meanwhile_by_another_process_is_skipped_when_the_page_gives_it_again(
    page):
  p, config, truth, _ = page
  p.train()
  items = p.state()['items']
  answer = lambda it: {'index': it['index'], 'id': it['id'], 'label': str(truth[it['id']])}
  # The command line (another learner on the workdir) teaches the first sample; the page, which
  # has not read the workdir since, submits it with the same label and a second one.
  with learner_lib.ActiveLearner(config, p.session.learner.workdir) as cli:
    cli.teach([items[0]['index']], [truth[items[0]['id']]])
  status, body, _ = p.request('POST', '/api/answers',
                              {'answers': [answer(items[0]), answer(items[1])]})
  assert status == 200 and body['taught'] == 1 and body['left'] == 4, body
  log = [json.loads(l) for l in open(os.path.join(p.session.learner.workdir,
                                                  answers.ANSWERS_FILE))]
  assert [r['index'] for r in log] == [items[0]['index'], items[1]['index']]
  # Another label for it is still refused.
  with learner_lib.ActiveLearner(config, p.session.learner.workdir) as cli:
    cli.teach([items[2]['index']], [(truth[items[2]['id']] + 1) % 10])
  status, body, _ = p.request('POST', '/api/answers', {'answers': [answer(items[2])]})
  assert status == 422 and 'labeled already' in body['refused']


def test_a_round_after_answers_from_another_process_counts_them_and_asks_again(page):
  # The command line answers the page's whole query; "train and ask again" on the page, which has
  # not read the workdir since, trains on them and asks the next query.
  p, config, truth, _ = page
  p.train()
  asked = [it['index'] for it in p.state()['items']]
  with learner_lib.ActiveLearner(config, p.session.learner.workdir) as cli:
    cli.teach(asked, [truth[cli.pool.ids[i]] for i in asked])
  assert len(p.session.learner.pending) == 6   # what the page's learner last read
  round_ = p.train()
  assert round_['error'] is None and round_['labels'] == 6, round_
  assert round_['message'] == '6 samples asked', round_
  assert not set(asked) & {it['index'] for it in p.state()['items']}


def test_samples_the_page_sets_aside_leave_the_query_and_are_never_asked_again(page):
  p, config, truth, _ = page
  p.train()
  items = p.state()['items']
  aside = [{'index': it['index'], 'id': it['id']} for it in items[:2]]
  status, body, _ = p.request('POST', '/api/set_aside', {'samples': [dict(aside[0], id='x.png')]})
  assert status == 422 and f"index {aside[0]['index']} is " in body['refused'] and (
      "not 'x.png': reload the page" in body['refused'])
  status, body, _ = p.request('POST', '/api/set_aside', {'samples': aside})
  assert status == 200 and body == {'set_aside': 2, 'left': 4, 'message': '2 set aside (never '
                                    'asked again); 4 of the query left.'}
  assert [it['index'] for it in p.state()['items']] == [it['index'] for it in items[2:]]
  status, body, _ = p.request('POST', '/api/answers', {'answers': [
      {'index': it['index'], 'id': it['id'], 'label': str(truth[it['id']])} for it in items[2:]]})
  assert status == 200 and body['left'] == 0
  round_ = p.train()
  assert round_['error'] is None and round_['message'] == '6 samples asked', round_
  assert not {a['index'] for a in aside} & {it['index'] for it in p.state()['items']}
  assert p.request('POST', '/api/set_aside', {'samples': []})[0] == 400
  # The labels out, as label labels writes them: those of the page, and one taught meanwhile
  # from the command line (another learner on the workdir).
  extra = p.state()['items'][0]
  with learner_lib.ActiveLearner(config, p.session.learner.workdir) as other:
    other.teach([extra['index']], [str(truth[extra['id']])])
  status, body, response = p.request('GET', '/labels.csv', token=False, headers={
      'Cookie': f'{page_http.cookie_name(p.session.token)}={p.session.token}'})
  assert status == 200 and response.getheader('Content-Disposition') == (
      'attachment; filename="labels.csv"')
  rows = body.decode('utf-8-sig').splitlines()
  answered = items[2:] + [extra]
  expected = sorted([(it['index'], it['id'], str(truth[it['id']]), 'answered') for it in answered]
                    + [(a['index'], a['id'], 'set aside', 'set aside') for a in aside])
  assert rows[0] == 'index,id,file,label,source,correction,pool,file_sha256' and [
      (int(r[0]), r[1], r[3], r[4]) for r in (row.split(',') for row in rows[1:])] == expected
  status, body, _ = p.request('GET', '/labels.jsonl')
  assert status == 200 and [json.loads(line)['id'] for line in body.decode().splitlines()] == [
      e[1] for e in expected]
  assert p.request('GET', '/labels.csv', token=False)[0] == 403


def test_answers_from_the_page_are_checked_and_logged_as_label_answer_would_and_drafts_kept(
    page):
  p, config, truth, tmp_path = page
  assert p.train()['message'] == '6 samples asked'
  state = p.state()
  items = state['items']
  assert len(items) == 6 and state['left'] == 6 and state['keys'] == [str(k) for k in range(10)]
  work = p.session.learner.workdir
  twin = str(tmp_path / 'twin')
  shutil.copytree(work, twin)
  # A bad answer: refused whole, with the lines `label answer` gives for the same file.
  bad = [{'index': items[0]['index'], 'id': items[0]['id'], 'label': 'eleven'},
         {'index': items[1]['index'], 'id': items[1]['id'], 'label': '4'},
         {'index': items[2]['index'], 'id': items[0]['id'], 'label': '4'}]
  status, body, _ = p.request('POST', '/api/answers', {'answers': bad})
  jsonl = tmp_path / 'bad.jsonl'
  jsonl.write_text(''.join(json.dumps(a) + '\n' for a in bad))
  with learner_lib.ActiveLearner(config, twin) as learner:
    _, _, cli_problems, _ = label.read_answers(str(jsonl), learner)
  assert status == 422
  lines = body['refused'].split('\n')
  assert lines[0] == "the page's answers: 2 problems; nothing of it was taught:"
  assert [l.split(', ', 1)[1] for l in lines[1:]] == [
      l.split(', ', 2)[2] for l in cli_problems]
  assert "label 'eleven' is not a class" in lines[1] and 'but the answer names id' in lines[2]
  assert not os.path.exists(os.path.join(work, answers.ANSWERS_FILE))
  # Good answers: the log is what `label answer` writes for the same answers.
  good = [{'index': it['index'], 'id': it['id'], 'label': str(truth[it['id']])}
          for it in items[:4]]
  status, body, _ = p.request('POST', '/api/answers', {'answers': good})
  assert status == 200 and body['taught'] == 4 and body['left'] == 2
  jsonl.write_text(''.join(json.dumps(a) + '\n' for a in good))
  with learner_lib.ActiveLearner(config, twin) as learner:
    label.teach_checked(learner, str(jsonl), *label.read_answers(str(jsonl), learner))
  log = open(os.path.join(work, answers.ANSWERS_FILE)).read()
  assert log == open(os.path.join(twin, answers.ANSWERS_FILE)).read() and log.count('\n') == 4
  assert [it['index'] for it in p.state()['items']] == [it['index'] for it in items[4:]]
  # The same answers again (a second tab): nothing new; another label for one: refused.
  status, body, _ = p.request('POST', '/api/answers', {'answers': good})
  assert status == 200 and body['taught'] == 0
  changed = [dict(good[0], label=str((truth[good[0]['id']] + 1) % 10))]
  status, body, _ = p.request('POST', '/api/answers', {'answers': changed})
  assert status == 422 and 'labeled already' in body['refused']
  # The command line holding the workdir: the page is refused, naming it, and nothing changes.
  from l2r_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  rest = [{'index': it['index'], 'id': it['id'], 'label': str(truth[it['id']])}
          for it in items[4:]]
  with workdir_lib.lock(work):
    status, body, _ = p.request('POST', '/api/answers', {'answers': rest})
    assert status == 409 and 'in use by process' in body['refused'] and body['retry']
    status, body, _ = p.request('GET', '/api/state')
    assert status == 409 and body['retry']   # the page looks again until the workdir is free
  assert open(os.path.join(work, answers.ANSWERS_FILE)).read() == log
  # What the page holds and has not submitted outlives the server.
  state = p.state()
  marks = {str(state['items'][0]['index']): {'label': '7', 't': 1}}
  status, body, _ = p.request('POST', '/api/draft', {'query_id': state['query_id'],
                                                     'marks': marks})
  assert status == 200
  assert p.request('POST', '/api/draft', {'marks': []})[0] == 400
  p.session.learner.close()
  again = serve.Session(config, p.session.learner.workdir)    # a server started anew
  try:
    assert again._state()['draft'] == marks
  finally:
    again.close()


def test_drafts_of_two_pages_merge_by_time_and_one_of_an_earlier_query_is_refused(page):
  p, _, truth, _ = page
  p.train()
  state = p.state()
  a, b, c = (str(it['index']) for it in state['items'][:3])

  def save(marks, query_id=state['query_id']):
    return p.request('POST', '/api/draft', {'query_id': query_id, 'marks': marks})[0]

  assert save({a: {'label': '7', 't': 10}, b: {'label': '1', 't': 10}}) == 200   # one page
  assert save({b: {'label': '2', 't': 20}, c: {'cleared': True, 't': 5}}) == 200  # another
  assert save({a: {'label': '8', 't': 30}, b: {'label': '1', 't': 10}}) == 200   # the first again
  assert p.state()['draft'] == {a: {'label': '8', 't': 30}, b: {'label': '2', 't': 20},
                                c: {'cleared': True, 't': 5}}
  # A sample answered leaves the draft the pages read.
  item = state['items'][0]
  status, body, _ = p.request('POST', '/api/answers', {'answers': [
      {'index': item['index'], 'id': item['id'], 'label': str(truth[item['id']])}]})
  assert status == 200 and body['message'] == '1 label taught; 5 of the query left.'
  assert sorted(p.state()['draft']) == sorted([b, c])
  # A page still on a query answered and replaced: refused, the draft kept as it is.
  status, body, _ = p.request('POST', '/api/draft', {'query_id': '0' * 16,
                                                     'marks': {b: {'label': '9', 't': 40}}})
  assert status == 409 and 'reload the page' in body['refused']
  assert p.state()['draft'][b] == {'label': '2', 't': 20}
  # Another request holding the learner: a round is refused in words that say why, and the page
  # is told the server is busy with no round training (it looks again).
  with p.session.busy:
    status, body, _ = p.request('POST', '/api/train', {})
    assert (status, body['refused']) == (409, 'answers are being taught; train again in a moment.')
    busy = p.state()
    assert busy['busy'] and busy['training']['done']


def test_two_servers_on_one_workdir_merge_their_pages_drafts_in_turn(page):
  # Two `label serve` on one workdir (two ports, one query), each page sending marks as they are
  # made: every mark either sends is kept, neither server's merge writing over the other's.
  p, config, _, _ = page
  p.train()
  query_id = p.state()['query_id']
  other = serve.Session(config, p.session.learner.workdir)
  sent = {session: [f'{name}{k}' for k in range(40)]
          for session, name in ((p.session, 'a'), (other, 'b'))}
  errors = []

  def send(session):
    try:
      for key in sent[session]:
        session.save_draft({'query_id': query_id, 'marks': {key: {'label': '1', 't': 1}}})
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=send, args=(s,)) for s in sent]
  try:
    for t in threads:
      t.start()
    for t in threads:
      t.join()
  finally:
    other.close()
  assert not errors
  kept = p.session._draft(p.session.learner.last_query)
  assert sorted(kept) == sorted(sent[p.session] + sent[other])


def test_a_draft_kept_under_the_name_earlier_releases_gave_the_query_is_read_back(page):
  # Marks kept by a page of an earlier release, whose query name left the pool out: an upgrade
  # between marking and submitting loses none of them.
  import hashlib  # pylint: disable=g-import-not-at-top
  p, _, _, _ = page
  p.train()
  query = p.session.learner.last_query
  earlier = hashlib.sha256(json.dumps([query['round'], query['num_labeled'],
                                       query['indices']]).encode()).hexdigest()[:16]
  index = str(query['indices'][0])
  draft = os.path.join(p.session.learner.workdir, 'query', serve.DRAFT_FILE)
  os.makedirs(os.path.dirname(draft), exist_ok=True)
  with open(draft, 'w') as f:
    json.dump({'query_id': earlier, 'marks': {index: {'label': '4', 't': 5}}}, f)
  state = p.state()
  assert state['query_id'] != earlier and state['draft'] == {index: {'label': '4', 't': 5}}
  # The next mark is merged with it and kept under the query's name now.
  other = str(query['indices'][1])
  assert p.request('POST', '/api/draft', {'query_id': state['query_id'],
                                          'marks': {other: {'label': '2', 't': 6}}})[0] == 200
  assert json.load(open(draft)) == {'query_id': state['query_id'], 'marks': {
      index: {'label': '4', 't': 5}, other: {'label': '2', 't': 6}}}
  # A name that is neither: not this query's draft.
  with open(draft, 'w') as f:
    json.dump({'query_id': '0' * 16, 'marks': {index: {'label': '4', 't': 5}}}, f)
  assert p.state()['draft'] is None


def test_class_keys_and_refused_address():
  assert serve.class_keys(['cat', 'dog']) == ['1', '2']
  assert serve.class_keys(['a', 'B', 'c']) == ['a', 'b', 'c']
  assert serve.class_keys(['a', 'A']) == ['1', '2']
  assert len(serve.class_keys([str(k) for k in range(40)])) == 40
  assert all(page_http.loopback(h) for h in ('127.0.0.1', '::1', 'localhost'))
  assert not page_http.loopback('0.0.0.0') and not page_http.loopback('192.168.1.5')


def test_an_address_or_port_that_cannot_be_listened_on_is_named_with_its_fix():
  import socket  # pylint: disable=g-import-not-at-top
  from l2r_jax import errors  # pylint: disable=g-import-not-at-top
  # 192.0.2.1 (TEST-NET-1) is no computer's own address: the host is at fault.
  with pytest.raises(errors.ServeError, match=r'--host=192.0.2.1 is not an address of this '
                     r'computer \(.*\): give one of its own \(127.0.0.1'):
    page_http.make_server(None, '192.0.2.1', 0)
  # A port another program listens on: the port is.
  taken = socket.socket()
  taken.bind(('127.0.0.1', 0))
  taken.listen()
  port = taken.getsockname()[1]
  try:
    with pytest.raises(errors.ServeError, match=f'--host=127.0.0.1 --port={port} cannot be '
                       r'listened on \(.*\): give another --port \(0: any free one\)'):
      page_http.make_server(None, '127.0.0.1', port)
  finally:
    taken.close()


@pytest.mark.parametrize('command, flag, refusal', [
    ('serve', '--port=70000', 'flag --port=70000: 70000 is not an integer in the range [0, 65535]'),
    ('query', '--n=0', 'flag --n=0: 0 is not a positive integer'),
    ('qurey', '--n=3', "'qurey' is not a command; give one of query, answer, status, export, "
     'labels, serve (did you mean query?). --help: every flag.')])
def test_the_command_line_refuses_in_one_line_before_anything_loads(tmp_path, command, flag,
                                                                    refusal):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, '-m', 'l2r_jax.label', command,
                        '--config=examples/image_folder.py', f'--workdir={tmp_path / "w"}', flag],
                       cwd=root, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  assert out.stderr.strip().splitlines()[-1].split(': ', 1) == ['l2r_jax.label' if command ==
                                                                'qurey' else 'l2r_jax', refusal]
  assert not (tmp_path / 'w').exists()


def test_a_command_without_its_config_is_refused_in_one_line(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, '-m', 'l2r_jax.label', 'query',
                        f'--workdir={tmp_path / "w"}'], cwd=root, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  assert out.stderr.strip().splitlines() == [
      'l2r_jax.label: query: give --config=FILE, the config the session was started with (label '
      'status alone reads a workdir without it).']
  assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('command', ['status', 'export'])
def test_status_and_export_of_a_workdir_with_no_session_are_refused_and_make_none(tmp_path,
                                                                                 command):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  workdir = tmp_path / 'typo'
  out = subprocess.run([sys.executable, '-m', 'l2r_jax.label', command,
                        '--config=examples/image_folder.py', f'--workdir={workdir}',
                        f'--to={tmp_path / "model"}'], cwd=root, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 2 and 'Traceback' not in out.stderr
  assert out.stderr.strip().splitlines()[-1] == (
      f'l2r_jax.label: {command}: --workdir={workdir} holds no labeling session (no '
      'experiment.json): give the workdir of one, or start one with label query.')
  assert not workdir.exists() and not (tmp_path / 'model').exists()


def test_ctrl_c_lets_a_training_round_end_and_a_second_stops_at_once(capsys, monkeypatch):
  # Stopping the interpreter under a running computation aborts it (a C++ exception escapes):
  # after Ctrl+C the page waits for the round; a second Ctrl+C exits at once, as a kill would.
  ended = threading.Event()
  thread = threading.Thread(target=lambda: (time.sleep(0.5), ended.set()))
  thread.start()
  serve._await_round(types.SimpleNamespace(training=thread))
  assert ended.is_set() and 'a round is training' in capsys.readouterr().err

  class Interrupted:
    def is_alive(self):
      return True

    def join(self, timeout):
      raise KeyboardInterrupt

  exits = []
  monkeypatch.setattr(serve.os, '_exit', exits.append)
  serve._await_round(types.SimpleNamespace(training=Interrupted()))
  assert exits == [130]
  serve._await_round(types.SimpleNamespace(training=None))   # nothing training: returns
