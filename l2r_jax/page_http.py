r"""The labeling page over HTTP: the routes, the responses and the checks every request passes.

**Safe by default.** 127.0.0.1 unless ``--host`` says otherwise (and then it says so). Every
request carries the page's key, as Jupyter's do: ``label serve`` prints the page's address with
it (``/?token=...``), which opening trades for a cookie of this server's, so whoever cannot read
that line (another user of the computer, another site, a name rebound to this address) is refused
every page, image and answer. A server on 127.0.0.1 also answers only requests naming this
computer (``Host``, any port: a forwarded one too). Only the page, the pool's own images and the
labels known are served (``/files/<id>`` under the dataset's root, checked by
:class:`l2r_jax.serve.Session`; ``/input/<index>`` for inputs without a file; ``/labels.csv``
and ``/labels.jsonl``, as ``label labels`` writes them); every request that changes something
carries the key in a header too, which only the page holds, comes from the page's own origin, and
is JSON of a bounded size; the page cannot be framed. What each route does is the session's
(:mod:`l2r_jax.serve`).
"""
import errno
import functools
import hashlib
import html
import http.cookies
import http.server
import ipaddress
import json
import os
import secrets
import socket
import traceback
from typing import Any, Dict, Optional
from urllib import parse as urlparse

from absl import logging

from l2r_jax import errors
from l2r_jax import workdir as workdir_lib
from l2r_jax.errors import RequestRefused

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
ASSETS = {'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8'}
# The labels known, to download (as label labels writes them).
LABEL_FILES = {'/labels.csv': 'labels.csv', '/labels.jsonl': 'labels.jsonl'}
LABEL_KINDS = {'labels.csv': 'text/csv; charset=utf-8',
               'labels.jsonl': 'application/x-ndjson; charset=utf-8'}
MAX_BODY = 16 << 20        # bytes of a request: thousands of heads
TOKEN_HEADER = 'X-L2R-Token'
TOKEN_PARAM = 'token'      # the page's address carries its key as ?token=...
TIMEOUT_S = 60             # a connection idle, or sending its request, this long is closed
SECURITY_HEADERS = {
    'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'",
    'X-Frame-Options': 'DENY', 'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-store'}


def address(host: str, port: int, token: str) -> str:
  """The page's address, with its key: what ``label serve`` prints for a person to open."""
  shown = f'[{host}]' if ':' in host else host
  return f'http://{shown}:{port}/?{TOKEN_PARAM}={token}'


def cookie_name(token: str) -> str:
  """The cookie holding a server's key: named after the key, since a browser shares cookies
  between the ports of one host (two pages open on two servers keep theirs)."""
  return 'l2r_page_' + hashlib.sha256(token.encode()).hexdigest()[:12]


def loopback(host: str) -> bool:
  if host == 'localhost':
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return False


class PageHandler(http.server.BaseHTTPRequestHandler):
  """One request to the page of ``session`` (a :class:`l2r_jax.serve.Session`), served at
  ``host``."""
  server_version = 'l2r-jax'
  sys_version = ''
  timeout = TIMEOUT_S

  def __init__(self, *args, session, host: str, **kwargs):
    self.session, self.page_host = session, host
    super().__init__(*args, **kwargs)

  def log_message(self, fmt, *args):  # pylint: disable=arguments-differ
    logging.info('%s %s', self.address_string(), fmt % args)

  def _send(self, status: int, body: bytes, kind: str,
            headers: Optional[Dict[str, str]] = None) -> None:
    self.send_response(status)
    self.send_header('Content-Type', kind)
    for k, v in (headers or {}).items():
      self.send_header(k, v)
    self.send_header('Content-Length', str(len(body)))
    for k, v in SECURITY_HEADERS.items():
      if not (k == 'Cache-Control' and kind == 'image/png'):
        self.send_header(k, v)
    if kind == 'image/png':   # a pool sample's image: the same while the pool is
      self.send_header('Cache-Control', 'private, max-age=3600')
    self.end_headers()
    self.wfile.write(body)

  def _refused_page(self, e: RequestRefused) -> None:
    text = html.escape(str(e))
    self._send(e.status, (f'<!doctype html><meta charset="utf-8"><title>l2r-jax: refused</title>'
                          f'<p>{text}</p>').encode(), 'text/html; charset=utf-8')

  def _json(self, status: int, value: Any) -> None:
    self._send(status, json.dumps(value).encode(), 'application/json')

  def _host_ok(self) -> bool:
    """A page served on this computer only answers requests naming it (its port may be another:
    a forwarded one); one served to the network answers any name, its key guarding it."""
    if not loopback(self.page_host):
      return True
    try:
      named = urlparse.urlsplit('//' + self.headers.get('Host', '')).hostname
    except ValueError:
      return False
    return named is not None and loopback(named)

  def _keyed(self) -> bool:
    """Whether the request carries the page's key: in its header (the page's own requests) or in
    the cookie that opening the page's address set."""
    token = self.session.token.encode()
    if secrets.compare_digest(self.headers.get(TOKEN_HEADER, '').encode(), token):
      return True
    cookies = http.cookies.SimpleCookie()
    try:
      cookies.load(self.headers.get('Cookie', ''))
    except http.cookies.CookieError:
      return False
    kept = cookies.get(cookie_name(self.session.token))
    return kept is not None and secrets.compare_digest(kept.value.encode(), token)

  def _guarded(self, handle) -> None:
    try:
      if not self._host_ok():
        raise RequestRefused(403, f'Host {self.headers.get("Host")!r}: the page answers requests '
                                  'naming this computer only.')
      if self._opened():
        return
      if not self._keyed() and urlparse.urlsplit(self.path).path != '/favicon.ico':
        raise RequestRefused(403, 'this request lacks the page\'s key: open the address that '
                                  '`python -m l2r_jax.label serve` printed (.../?token=...; a '
                                  'server started again has a new one).')
      handle()
    except RequestRefused as e:
      if self.command == 'GET' and 'text/html' in self.headers.get('Accept', ''):
        self._refused_page(e)   # an address opened in a browser: the refusal as a page
      else:
        self._json(e.status, {'refused': str(e)})
    except workdir_lib.WorkdirError as e:   # another process holds the workdir: look again
      self._json(409, {'refused': str(e), 'retry': isinstance(e, errors.WorkdirInUse)})
    except errors.Refusal as e:
      self._json(422, {'refused': str(e)})
    except (BrokenPipeError, ConnectionResetError):
      pass
    except Exception:  # pylint: disable=broad-except  (a bug: the page hears of it, the log has it)
      logging.error('%s %s failed:\n%s', self.command, self.path, traceback.format_exc())
      try:
        self._json(500, {'refused': 'the server failed on this request (the terminal running '
                                    'the page shows the error).'})
      except OSError:
        pass

  def _opened(self) -> bool:
    """The page's address opened (``/?token=...``): the key kept in a cookie, and the page shown
    at ``/`` (the key out of the address bar and the history)."""
    parts = urlparse.urlsplit(self.path)
    given = urlparse.parse_qs(parts.query).get(TOKEN_PARAM)
    if self.command != 'GET' or parts.path not in ('/', '/index.html') or not given:
      return False
    if not secrets.compare_digest(given[-1].encode(), self.session.token.encode()):
      raise RequestRefused(403, 'this address\'s key is not the page\'s: open the address that '
                                '`python -m l2r_jax.label serve` printed last (a server started '
                                'again has a new key).')
    self.send_response(303)
    self.send_header('Location', '/')
    self.send_header('Set-Cookie', f'{cookie_name(self.session.token)}={self.session.token}; '
                                   'Path=/; HttpOnly; SameSite=Lax')
    self.send_header('Content-Length', '0')
    for k, v in SECURITY_HEADERS.items():
      self.send_header(k, v)
    self.end_headers()
    return True

  def do_GET(self):  # pylint: disable=invalid-name
    self._guarded(self._get)

  def do_POST(self):  # pylint: disable=invalid-name
    self._guarded(self._post)

  def _get(self) -> None:
    session, path = self.session, urlparse.urlsplit(self.path).path
    if path in ('/', '/index.html'):
      with open(os.path.join(STATIC, 'index.html'), encoding='utf-8') as f:
        page = f.read().replace('__TOKEN__', session.token)
      self._send(200, page.encode(), 'text/html; charset=utf-8')
    elif path.startswith('/static/') and path[len('/static/'):] in ASSETS:
      name = path[len('/static/'):]
      with open(os.path.join(STATIC, name), 'rb') as f:
        self._send(200, f.read(), ASSETS[name])
    elif path == '/favicon.ico':
      self._send(204, b'', 'image/x-icon')
    elif path == '/api/state':
      self._json(200, session.state())
    elif path == '/api/progress':
      self._json(200, {'training': session.progress()})
    elif path in LABEL_FILES:
      name = LABEL_FILES[path]
      self._send(200, session.labels(os.path.splitext(name)[1]), LABEL_KINDS[name],
                 {'Content-Disposition': f'attachment; filename="{name}"'})
    elif path.startswith('/files/'):
      self._send(200, session.file_png(urlparse.unquote(path[len('/files/'):])), 'image/png')
    elif path.startswith('/input/'):
      self._send(200, session.input_png(path[len('/input/'):]), 'image/png')
    else:
      raise RequestRefused(404, f'{path}: no such page.')

  def _post(self) -> None:
    body = self._checked_body()
    session, path = self.session, urlparse.urlsplit(self.path).path
    if path == '/api/answers':
      self._json(200, session.answer(body))
    elif path == '/api/set_aside':
      self._json(200, session.set_aside(body))
    elif path == '/api/train':
      self._json(202, {'training': session.train()})
    elif path == '/api/draft':
      self._json(200, session.save_draft(body))
    else:
      raise RequestRefused(404, f'{path}: no such action.')

  def _checked_body(self) -> Any:
    """The request's JSON body, once the request is shown to be the page's: its token, its
    origin, its kind and its size."""
    token = self.headers.get(TOKEN_HEADER, '')
    if not secrets.compare_digest(token.encode(), self.session.token.encode()):
      raise RequestRefused(403, f'this request lacks the page\'s key in its {TOKEN_HEADER} header: '
                                'reload the page (only the page itself can change the workdir).')
    origin = self.headers.get('Origin')
    if origin and urlparse.urlsplit(origin).netloc != self.headers.get('Host'):
      raise RequestRefused(403, f'Origin {origin!r} is not the page\'s.')
    if self.headers.get('Content-Type', '').split(';')[0].strip() != 'application/json':
      raise RequestRefused(415, 'send JSON (Content-Type: application/json).')
    length = (self.headers.get('Content-Length') or '0').strip()
    if not (length.isascii() and length.isdigit()):
      raise RequestRefused(400, f'Content-Length {length!r} is not a number of bytes.')
    length = int(length)
    if length > MAX_BODY:
      raise RequestRefused(413, f'a request of {length} bytes; at most {MAX_BODY}.')
    try:
      body = self.rfile.read(length)
    except TimeoutError:
      raise RequestRefused(408, f'the request\'s {length} bytes did not come in {self.timeout} '
                                's.') from None
    try:
      return json.loads(body.decode('utf-8') or 'null')
    except (ValueError, RecursionError):
      raise RequestRefused(400, 'the request is not JSON.') from None


class Server(http.server.ThreadingHTTPServer):
  daemon_threads = True
  allow_reuse_address = True


class Server6(Server):
  address_family = socket.AF_INET6


def make_server(session, host: str = '127.0.0.1', port: int = 8765) -> Server:
  """The page's server for ``session`` (a :class:`l2r_jax.serve.Session`), bound (not yet serving:
  ``serve_forever``)."""
  handler = functools.partial(PageHandler, session=session, host=host)
  try:
    server = (Server6 if ':' in host else Server)((host, port), handler)
  except OSError as e:
    if isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL:
      raise errors.ServeError(f'--host={host} is not an address of this computer '
                              f'({e.strerror or e}): give one of its own (127.0.0.1: this '
                              'computer only; 0.0.0.0: every network it is on).') from None
    raise errors.ServeError(f'--host={host} --port={port} cannot be listened on '
                            f'({e.strerror or e}): give another --port (0: any free one).'
                            ) from None
  return server
