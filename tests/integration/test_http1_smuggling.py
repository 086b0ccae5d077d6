"""Ambiguous and malformed framing (request smuggling, RFC 9112 §6.1, §6.3,
§5.1, §5.2, §3.2): each is refused with 400 and the connection is closed, so
no byte after the refusal is ever read as another request."""

import http.client
import unittest

from atoll_proc import AtollProcess
from wire import RawConnection

# A second request follows each bad one: if the server read it, the bad
# request's framing was guessed at, which is what smuggling exploits.
SMUGGLED = "GET /echo?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n"

CASES = {
    "content_length_and_transfer_encoding":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
    "transfer_encoding_and_content_length":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
        "0\r\n\r\n",
    "duplicate_equal_content_length":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "different_content_lengths":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "content_length_list":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
    "content_length_not_a_number":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "content_length_negative":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "content_length_plus_sign":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    "content_length_hex":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello",
    "content_length_two_numbers":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\nx",
    "content_length_overflow":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "invalid_chunk_size":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_with_junk":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n",
    "negative_chunk_size":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "10000000000000005\r\nhello\r\n0\r\n\r\n",
    "chunk_without_crlf":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "transfer_encoding_not_chunked":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
    "transfer_encoding_chunked_not_last":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "transfer_encoding_misspelt":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "transfer_encoding_in_http10":
        "POST /body HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "obs_fold":
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    "obs_fold_tab":
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n\tb\r\n\r\n",
    "obs_fold_transfer_encoding":
        "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "obs_fold_after_blank_value":
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-Folded: \t \r\n  b\r\n\r\n",
    "obs_fold_content_length":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n 0\r\n\r\n0123456789",
    "space_before_first_header":
        "GET /echo HTTP/1.1\r\n Host: x\r\n\r\n",
    "bare_cr_in_header_value":
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "bare_cr_in_header_name":
        "GET /echo HTTP/1.1\r\nHost: x\r\nX\rA: a\r\n\r\n",
    "bare_lf_in_header_value":
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\n\r\n",
    # A bare LF ending the head early: llhttp took the rest for body bytes
    # and the server crashed (found by tests/fuzz/http1_fuzz).
    "bare_lf_ends_the_head_with_a_body":
        "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\nabcdef\r\n\r\n",
    "bare_lf_ends_the_head_before_another":
        "GET /echo HTTP/1.1\r\nHost: x\r\n\nGET /echo?smuggled=2 HTTP/1.1\r\nHost: x\r\n\r\n",
    "bare_lf_after_request_line":
        "GET /echo HTTP/1.1\nHost: x\r\n\r\n",
    "nul_in_header_value":
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "space_before_colon":
        "GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
    "space_in_header_name":
        "GET /echo HTTP/1.1\r\nHost: x\r\nX A: a\r\n\r\n",
    "header_without_colon":
        "GET /echo HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
    "missing_host_http11":
        "GET /echo HTTP/1.1\r\n\r\n",
    "two_hosts":
        "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "two_hosts_http10":
        "GET /echo HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad_method":
        "G(T /echo HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad_version":
        "GET /echo HTTX/1.1\r\nHost: x\r\n\r\n",
    "space_in_target":
        "GET /echo x HTTP/1.1\r\nHost: x\r\n\r\n",
    "target_not_a_path":
        "GET echo HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad_percent_encoding":
        "GET /echo%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    "percent_nul":
        "GET /echo%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "control_char_in_target":
        "GET /echo\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
}


class SmugglingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = AtollProcess("http_probe").start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        assert rc == 0, f"http_probe exited with {rc}: {cls.srv.stderr()!r}"

    def check_refused(self, name, request):
        with RawConnection(self.port) as c:
            c.send(request + SMUGGLED)
            r = c.read_response()
            self.assertEqual(r.status, 400, f"{name}: {r.status} {r.body!r}")
            self.assertEqual(r.header("Connection", "").lower(), "close", name)
            self.assertNotIn(b"smuggled", r.body, name)
            self.assertTrue(c.closed_by_server(), f"{name}: the connection is closed, nothing else answered")

    def test_each_case_is_refused_and_closed(self):
        for name, request in CASES.items():
            with self.subTest(name):
                self.check_refused(name, request)

    def test_server_is_still_serving(self):
        for name, request in list(CASES.items())[:5]:
            self.check_refused(name, request)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", "/echo")
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()

    def test_valid_neighbours_are_accepted(self):
        # The refusals above are about framing, not fussiness: close relatives
        # that are valid must pass.
        ok = [
            "GET /echo HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n",
            "GET /echo HTTP/1.1\r\nhOsT: x\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost: x\r\nX-Tab:\tvalue\t\r\n\r\n",
            "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello",
            "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n005\r\nhello\r\n0\r\n\r\n",
            "GET /echo HTTP/1.0\r\n\r\n",
            "GET /echo HTTP/1.1\r\nHost:\r\n\r\n",  # an empty Host is allowed (RFC 9112 §3.2)
            "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        for request in ok:
            with self.subTest(request):
                with RawConnection(self.port) as c:
                    c.send(request)
                    r = c.read_response()
                    self.assertIn(r.status, (200, 404), f"{request!r}: {r.status} {r.body!r}")


if __name__ == "__main__":
    unittest.main()
