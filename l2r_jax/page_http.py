r"""The labeling page over HTTP: the routes, the responses and the checks every request passes.

**Safe by default.** 127.0.0.1 unless ``--host`` says otherwise (and then it says so); requests
must name this computer (``Host``: no DNS rebinding); only the page and the pool's own images are
served (``/files/<id>`` under the dataset's root, checked by :class:`l2r_jax.serve.Session`;
``/input/<index>`` for inputs without a file); every request that changes something carries the
session's token, which only the page holds, comes from the page's own origin, and is JSON of a
bounded size; the page cannot be framed. What each route does is the session's
(:mod:`l2r_jax.serve`).
"""
import errno
import functools
import http.server
import ipaddress
import json
import os
import secrets
import socket
from typing import Any
from urllib import parse as urlparse

from absl import logging

from l2r_jax import errors
from l2r_jax import workdir as workdir_lib
from l2r_jax.errors import RequestRefused

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
ASSETS = {'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8'}
MAX_BODY = 16 << 20        # bytes of a request: thousands of heads
TOKEN_HEADER = 'X-L2R-Token'
SECURITY_HEADERS = {
    'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'",
    'X-Frame-Options': 'DENY', 'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-store'}


def loopback(host: str) -> bool:
  if host == 'localhost':
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return False


class PageHandler(http.server.BaseHTTPRequestHandler):
  """One request to the page of ``session`` (a :class:`l2r_jax.serve.Session`), served at
  ``host``; ``port_of()``: the port bound, for ``Host``."""
  server_version = 'l2r-jax'
  sys_version = ''

  def __init__(self, *args, session, host: str, port_of, **kwargs):
    self.session, self.page_host, self.port_of = session, host, port_of
    super().__init__(*args, **kwargs)

  def log_message(self, fmt, *args):  # pylint: disable=arguments-differ
    logging.info('%s %s', self.address_string(), fmt % args)

  def _send(self, status: int, body: bytes, kind: str) -> None:
    self.send_response(status)
    self.send_header('Content-Type', kind)
    self.send_header('Content-Length', str(len(body)))
    for k, v in SECURITY_HEADERS.items():
      if not (k == 'Cache-Control' and kind == 'image/png'):
        self.send_header(k, v)
    if kind == 'image/png':   # a pool sample's image: the same while the pool is
      self.send_header('Cache-Control', 'private, max-age=3600')
    self.end_headers()
    self.wfile.write(body)

  def _json(self, status: int, value: Any) -> None:
    self._send(status, json.dumps(value).encode(), 'application/json')

  def _host_ok(self) -> bool:
    if not loopback(self.page_host):
      return True
    port = self.port_of()
    allowed = {f'{h}:{port}' for h in ('127.0.0.1', 'localhost', '[::1]', self.page_host)}
    return self.headers.get('Host', '') in allowed

  def _guarded(self, handle) -> None:
    try:
      if not self._host_ok():
        raise RequestRefused(403, f'Host {self.headers.get("Host")!r}: the page answers requests '
                                  'naming this computer only.')
      handle()
    except RequestRefused as e:
      self._json(e.status, {'refused': str(e)})
    except workdir_lib.WorkdirError as e:
      self._json(409, {'refused': str(e)})
    except errors.Refusal as e:
      self._json(422, {'refused': str(e)})
    except (BrokenPipeError, ConnectionResetError):
      pass

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
      raise RequestRefused(403, 'this request lacks the page\'s token: reload the page (only the '
                                'page itself can change the workdir).')
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
      return json.loads(self.rfile.read(length).decode('utf-8') or 'null')
    except (ValueError, RecursionError):
      raise RequestRefused(400, 'the request is not JSON.') from None


class Server(http.server.ThreadingHTTPServer):
  daemon_threads = True
  allow_reuse_address = True


def make_server(session, host: str = '127.0.0.1', port: int = 8765) -> Server:
  """The page's server for ``session`` (a :class:`l2r_jax.serve.Session`), bound (not yet serving:
  ``serve_forever``)."""
  holder = {}
  handler = functools.partial(PageHandler, session=session, host=host,
                              port_of=lambda: holder['port'])
  if ':' in host:
    Server.address_family = socket.AF_INET6
  try:
    server = Server((host, port), handler)
  except OSError as e:
    if isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL:
      raise errors.ServeError(f'--host={host} is not an address of this computer '
                              f'({e.strerror or e}): give one of its own (127.0.0.1: this '
                              'computer only; 0.0.0.0: every network it is on).') from None
    raise errors.ServeError(f'--host={host} --port={port} cannot be listened on '
                            f'({e.strerror or e}): give another --port (0: any free one).'
                            ) from None
  holder['port'] = server.server_address[1]
  return server
