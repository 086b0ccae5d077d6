"""Custom domains through the admin API and the real server: unique (409
naming the owner), normalised (case, trailing dot, IDNA to punycode),
validated (400 naming the rule), never under the base domain, and
wildcards, the most specific match winning."""

import unittest

from site_host import SiteHostTestCase, tar_gz


class DomainsTest(SiteHostTestCase):
    def site(self, name, domains):
        """Creates `name` with `domains` and a deploy whose page names it."""
        status, j = self.host.admin("POST", "/api/sites", {"name": name, "domains": domains})
        self.assertEqual(status, 201, j)
        status, d = self.host.admin("POST", f"/api/sites/{name}/deploys",
                                    tar_gz({"index.html": f"<p>{name}</p>".encode()}),
                                    content_type="application/gzip")
        self.assertEqual(status, 201, d)
        return j

    def who(self, host_header):
        r = self.host.get(None, "/", host=host_header)
        return r.data.decode() if r.status == 200 else r.status

    def test_a_domain_belongs_to_one_site(self):
        self.site("owner", ["shop.example.test"])
        status, j = self.host.admin("POST", "/api/sites", {"name": "thief", "domains": ["SHOP.example.test."]})
        self.assertEqual(status, 409, j)
        self.assertIn("'shop.example.test' already belongs to site 'owner'", j["error"])
        status, j = self.host.admin("GET", "/api/sites")
        self.assertNotIn("thief", [s["name"] for s in j["sites"]], "the refused site was not created")
        self.site("other", [])
        status, j = self.host.admin("PUT", "/api/sites/other/domains", {"domains": ["shop.example.test"]})
        self.assertEqual(status, 409, j)
        self.assertIn("site 'owner'", j["error"])
        self.assertEqual(self.who("shop.example.test"), "<p>owner</p>")

    def test_domains_are_stored_and_matched_in_one_spelling(self):
        j = self.site("spelled", ["EXAMPLE2.TEST.", "B\u00fccher.Example"])
        self.assertEqual(j["domains"], ["example2.test", "xn--bcher-kva.example"])
        for header in ("example2.test", "EXAMPLE2.test", "example2.test.", "example2.test:8443",
                       "xn--bcher-kva.example", "XN--BCHER-KVA.EXAMPLE."):
            self.assertEqual(self.who(header), "<p>spelled</p>", header)

    def test_each_rule_is_named_with_a_400(self):
        self.site("strict", [])
        cases = {
            "demo.localhost": "under the base domain 'localhost'",
            "*.localhost": "under the base domain",
            "with space.test": "only letters, digits",
            "a/b.test": "only letters, digits",
            "a..test": "empty label",
            "-x.test": "starts or ends with '-'",
            "x" * 64 + ".test": "longer than 63 bytes",
            "intranet": "at least two labels",
            "10.0.0.1": "IP address",
            "a.*.test": "whole first label",
            "": "cannot be empty",
        }
        for domain, why in cases.items():
            for method, path, body in (("POST", "/api/sites", {"name": "refused", "domains": [domain]}),
                                       ("PUT", "/api/sites/strict/domains", {"domains": [domain]})):
                status, j = self.host.admin(method, path, body)
                self.assertEqual(status, 400, (domain, j))
                self.assertIn(why, j["error"], domain)
        status, j = self.host.admin("PUT", "/api/sites/strict/domains", {"domains": "one.test"})
        self.assertEqual(status, 400, j)
        status, j = self.host.admin("PUT", "/api/sites/nosuch/domains", {"domains": ["free.test"]})
        self.assertEqual(status, 404, j)

    def test_wildcards_match_any_depth_and_the_most_specific_wins(self):
        self.site("wild", ["*.wild.test"])
        self.site("deeper", ["*.eu.wild.test"])
        self.site("exact", ["www.eu.wild.test"])
        self.assertEqual(self.who("a.wild.test"), "<p>wild</p>")
        self.assertEqual(self.who("x.y.z.wild.test"), "<p>wild</p>")
        self.assertEqual(self.who("shop.eu.wild.test"), "<p>deeper</p>")
        self.assertEqual(self.who("a.b.eu.wild.test"), "<p>deeper</p>")
        self.assertEqual(self.who("www.eu.wild.test"), "<p>exact</p>")
        self.assertEqual(self.who("wild.test"), 404, "a wildcard does not name its own domain")
        self.assertEqual(self.who("wild.test.evil"), 404)
        self.assertEqual(self.who("notwild.test"), 404)
        # A site's own NAME.localhost beats any wildcard, and the wildcard is
        # stored as given, not as a literal host name.
        status, j = self.host.admin("GET", "/api/sites")
        self.assertIn("*.wild.test", [d for s in j["sites"] for d in s["domains"]])

    def test_replacing_domains_moves_the_traffic(self):
        self.site("mover", ["old.mover.test"])
        status, j = self.host.admin("PUT", "/api/sites/mover/domains", {"domains": ["New.Mover.Test"]})
        self.assertEqual(status, 200, j)
        self.assertEqual(j["domains"], ["new.mover.test"])
        self.assertEqual(self.who("new.mover.test"), "<p>mover</p>")
        self.assertEqual(self.who("old.mover.test"), 404)
        # The freed domain can be claimed by another site.
        self.site("claimer", ["old.mover.test"])
        self.assertEqual(self.who("old.mover.test"), "<p>claimer</p>")


if __name__ == "__main__":
    unittest.main()
