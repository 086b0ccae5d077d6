"""A raw HTTP/1.1 client on a plain socket, for what http.client will not send
or will hide: pipelining, malformed requests, interim (1xx) responses, the
exact bytes of chunked framing, and whether the server closed the connection.
"""

import socket
import time


class Response:
    def __init__(self, version, status, reason, headers, body, raw, chunked=False, trailers=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as received
        self.body = body  # de-chunked
        self.raw = raw  # the bytes on the wire
        self.chunked = chunked
        self.trailers = trailers or []

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:80]!r}>"


class Closed(Exception):
    """The server closed the connection before a whole response arrived."""


class RawConnection:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _more(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete response within {self.timeout} s; have {self.buf[:200]!r}")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            raise TimeoutError(f"no complete response within {self.timeout} s; have {self.buf[:200]!r}")
        return data

    def _read_until(self, marker, deadline):
        while marker not in self.buf:
            data = self._more(deadline)
            if not data:
                raise Closed(f"closed while waiting for {marker!r}; have {self.buf[:200]!r}")
            self.buf += data
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            data = self._more(deadline)
            if not data:
                raise Closed(f"closed with {len(self.buf)} of {n} body bytes")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head_request=False, interim=False):
        """Reads one response. 1xx responses are skipped unless `interim`
        (then the first one, 1xx or not, is returned)."""
        deadline = time.monotonic() + self.timeout
        while True:
            head = self._read_until(b"\r\n\r\n", deadline)
            lines = head[:-4].split(b"\r\n")
            version, status, reason = (lines[0].decode("latin-1").split(" ", 2) + [""])[:3]
            status = int(status)
            headers = []
            for line in lines[1:]:
                k, _, v = line.decode("latin-1").partition(":")
                headers.append((k, v.strip()))
            if 100 <= status < 200 and not interim:
                continue
            resp = Response(version, status, reason, headers, b"", head)
            if 100 <= status < 200 or status in (204, 304) or head_request:
                return resp
            te = resp.header("Transfer-Encoding")
            cl = resp.header("Content-Length")
            if te is not None and "chunked" in te.lower():
                resp.chunked = True
                body = b""
                while True:
                    size_line = self._read_until(b"\r\n", deadline)
                    resp.raw += size_line
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while True:
                            line = self._read_until(b"\r\n", deadline)
                            resp.raw += line
                            if line == b"\r\n":
                                break
                            k, _, v = line[:-2].decode("latin-1").partition(":")
                            resp.trailers.append((k, v.strip()))
                        break
                    data = self._read_exact(size + 2, deadline)
                    resp.raw += data
                    body += data[:-2]
                resp.body = body
            elif cl is not None:
                resp.body = self._read_exact(int(cl), deadline)
                resp.raw += resp.body
            else:  # delimited by the close
                while True:
                    data = self._more(deadline)
                    if not data:
                        break
                    self.buf += data
                resp.body, self.buf = self.buf, b""
                resp.raw += resp.body
            return resp

    def read_all(self):
        """Everything until the server closes (or the timeout passes: raises)."""
        deadline = time.monotonic() + self.timeout
        while True:
            data = self._more(deadline)
            if not data:
                out, self.buf = self.buf, b""
                return out
            self.buf += data

    def closed_by_server(self, timeout=None):
        """True if the server closes the connection (EOF or reset) within
        `timeout` with no further bytes; raises if bytes arrive instead."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if self.buf:
            raise AssertionError(f"unexpected bytes before close: {self.buf[:200]!r}")
        try:
            data = self._more(deadline)
        except TimeoutError:
            return False
        if data:
            raise AssertionError(f"unexpected bytes instead of close: {data[:200]!r}")
        return True

    def quiet_for(self, seconds):
        """True if nothing arrives (and no close) for `seconds`."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        self.buf += data
        return False


def exchange(port, request, head_request=False, timeout=5.0):
    """Sends one raw request on a new connection and returns (response, closed):
    `closed` says whether the server then closed the connection."""
    with RawConnection(port, timeout=timeout) as c:
        c.send(request)
        resp = c.read_response(head_request=head_request)
        return resp, c.closed_by_server(timeout=timeout)
