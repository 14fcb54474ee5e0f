#!/usr/bin/env python3
"""Generate Warden's DLP negative corpus (engine/tests/data/dlp/corpus/).

The corpus is realistic, digit-dense traffic that contains *no* sensitive data
of any kind detected by the built-in catalogue (docs/POLICY.md, *The detector catalogue*): e-commerce API
responses, telemetry events, base64 images, technical prose and form bodies.
A test scans it with the default catalogue and counts findings (goal: 0).

Clean by construction: every record is checked before it is kept, and a record
that fails a check is thrown away and generated again. The checks implement the
validators the detectors use (Luhn + card brand, Verhoeff, GB 11643, mod-97,
SSN shape, Chinese mobile shape, ...) and are deliberately *stricter* than the
detectors should be (see HARD CHECKS below). A final pass re-checks whole files.

Python 3 standard library only; deterministic (fixed seed, no clock, no zlib
compression whose output could vary between zlib builds).

    python3 scripts/gen-dlp-corpus.py            # (re)generate and print a summary
    python3 scripts/gen-dlp-corpus.py --check    # only re-check the committed files
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import json
import os
import random
import re
import struct
import sys
import urllib.parse
import uuid
import zlib

SEED = 0x5EED_D1F0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "engine", "tests", "data", "dlp", "corpus")

# ---------------------------------------------------------------------------
# Validators (the same algorithms the detectors use)
# ---------------------------------------------------------------------------


def luhn_ok(d: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = ord(ch) - 48
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def card_brand_prefix(d: str) -> bool:
    """Generous union of issuer prefixes (Visa, Mastercard, Amex, Diners, JCB,
    Discover, UnionPay, Maestro, Mir, RuPay, Verve, Troy, UATP, ...).
    Anything starting with 2-6 counts, whatever its length in 12..19."""
    n = len(d)
    if not 12 <= n <= 19:
        return False
    if d[0] in "23456":
        return True
    if d[:2] in ("81", "82") or d[:4] == "9792":
        return True
    return d[0] == "1" and n == 15  # UATP


_VH_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VH_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def verhoeff_ok(d: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(d)):
        c = _VH_D[c][_VH_P[i % 8][ord(ch) - 48]]
    return c == 0


_GB_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def gb11643_ok(s: str) -> bool:
    s = s.upper()
    total = sum(int(s[i]) * _GB_W[i] for i in range(17))
    return "10X98765432"[total % 11] == s[17]


def mod97_ok(s: str) -> bool:
    s = s.upper()
    r = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in r)
    return int(num) % 97 == 1


# ISO 13616 registry: country -> IBAN length.
IBAN_LEN = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "DZ": 26, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23,
    "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23,
    "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24,
    "XK": 20, "YE": 30,
}

# ---------------------------------------------------------------------------
# Checks
#
# HARD checks reject a record. They are the union of what a reasonable detector
# in the catalogue could match, and stricter where cheap:
#   * digit spans: every span of digits that is bounded by non-digits and made of
#     whole groups of a run "d+([ -]d+)*" (single space or dash separators) -- so
#     "ORD-2024-0318-004821" yields 2024-0318-004821, 0318-004821, ..., and a
#     digit run inside a hex hash counts too (letters are boundaries here, which
#     is stricter than \b);
#       12-19 digits, Luhn-valid, issuer prefix (generous, see card_brand_prefix)
#       12 digits, first 2-9, Verhoeff-valid               (in_aadhaar)
#       18 digits (or 17 + X), GB 11643-valid                (cn_resident_id)
#       11 digits 1[3-9]..., plain or 3-4-4; 13 digits 86 1[3-9]... (cn_mobile)
#       3-2-4 groups (ddd-dd-dddd or with spaces), any value (us_ssn)
#     and no digit run longer than 19 at all (so no window of one can match);
#   * IBAN: [A-Z]{2}\d{2} + 11..30 [A-Z0-9] (single spaces allowed) with a
#     registry country, any length 15-34, mod-97 valid; and case-insensitive with a
#     registry country at the registry length.
#   * uk_nino shape (any two uppercase letters, no boundaries needed).
#   * email, URL userinfo (any "scheme://...@"), Authorization/Basic credentials.
#   * provider prefixes anywhere (no boundaries): AWS key ids, LTAI, AIza,
#     gh?_ / github_pat_, gl*-, xox?-, xapp-, hooks.slack.com, [rs]k_(live|test)_,
#     whsec_, sk- at a token start, T3BlbkFJ, npm_ + 20, pypi-Ag, SG.x, eyJ,
#     -----BEGIN, "private key", service_account, AccountKey=, a standalone
#     88-char base64 token ending "==", a standalone 40-char mixed-case base64
#     token, and any 40-char token within 80 chars after "aws" or "secret".
# RISK counters do not reject; they are reported for the detector author.
# ---------------------------------------------------------------------------

RUN_RE = re.compile(r"\d+(?:[ -]\d+)*")
GROUP_RE = re.compile(r"\d+")
CN_MOBILE_ANY_RE = re.compile(r"1[3-9]\d{9}")
AADHAAR_ANY_RE = re.compile(r"[2-9]\d{11}")
SSN_FALLBACK_RE = re.compile(r"(?<!\d)\d{3}[ -]\d{2}[ -]\d{4}(?!\d)")
CNID_X_RE = re.compile(r"(?<!\d)(\d{17}[Xx])")
IBAN_HEAD_RE = re.compile(r"(?=([A-Za-z]{2}\d{2}))")
NINO_RE = re.compile(r"[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]")  # any letters, even the invalid QQ/BG/...
NINO_CI_RE = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]", re.I)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
URL_USERINFO_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?://|\\/\\/)[^\s/?#@\"'<>\\]*@")
AUTH_BASIC_RE = re.compile(r"authorization[\"']?\s*[:=]\s*[\"']?basic", re.I)
BASIC_TOKEN_RE = re.compile(r"\bbasic\s+([A-Za-z0-9+/]{4,}={0,2})", re.I)
B64_40_RE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
B64_40_ANY_RE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
HEX40_RE = re.compile(r"(?<![0-9A-Fa-f])[0-9a-f]{40}(?![0-9A-Fa-f])")
AWS_CONTEXT_RE = re.compile(r"aws|secret", re.I)
# A Subresource Integrity hash (`sha512-` and 88 base64 characters, as in npm
# lockfiles) is the one 88-character base64 string the corpus may hold.
AZURE_RE = re.compile(r"(?<![A-Za-z0-9+/])(?<!sha512-)[A-Za-z0-9+/]{86}==")
AZURE_ANY_RE = re.compile(r"[A-Za-z0-9+/]{86}==")

PREFIX_RES = [
    ("aws_access_key_id", re.compile(r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{12}|AKIA")),
    ("alibaba_access_key_id", re.compile(r"LTAI")),
    ("gcp_api_key", re.compile(r"AIza")),
    ("github_token", re.compile(r"gh[pousr]_|github_pat_")),
    ("gitlab_token", re.compile(r"gl(?:pat|dt|rt|ptt|oas|ft|imt|cbt|soat|ffct|agent)-|GR1348941")),
    ("slack_token", re.compile(r"xox[a-z]-|xapp-")),
    ("slack_webhook", re.compile(r"hooks\.slack\.com")),
    ("stripe_secret_key", re.compile(r"[rs]k_(?:live|test)_|whsec_")),
    ("openai_api_key", re.compile(r"(?<![A-Za-z0-9])sk-|T3BlbkFJ")),
    ("npm_token", re.compile(r"npm_[A-Za-z0-9]{20}")),
    ("pypi_token", re.compile(r"pypi-Ag|AgEIcHlwaS5vcmc")),
    ("sendgrid_api_key", re.compile(r"SG\.[A-Za-z0-9_-]{8}")),
    ("jwt", re.compile(r"eyJ")),
    ("private_key", re.compile(r"-----BEGIN|private[ _-]?key", re.I)),
    ("gcp_service_account_key", re.compile(r"service_account")),
    ("azure_storage_key", re.compile(r"AccountKey|DefaultEndpointsProtocol")),
]

RISK_RES = [
    ("risk: sk- inside a word followed by 20+ [A-Za-z0-9_-] (naive openai regex)",
     re.compile(r"(?<=[A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}")),
    ("risk: uk_nino shape, case-insensitive, no word boundary (e.g. inside hex)", NINO_CI_RE),
    ("risk: 'basic' followed by a word (naive basic-auth regex)",
     re.compile(r"\bbasic\s+[A-Za-z0-9+/]{8,}", re.I)),
    ("risk: 86+ base64 chars then == with no left boundary (naive azure regex)", AZURE_ANY_RE),
]


class Checker:
    def __init__(self) -> None:
        self.spans = 0
        self.reasons: collections.Counter[str] = collections.Counter()
        self.risks: collections.Counter[str] = collections.Counter()

    # -- digit spans -------------------------------------------------------
    def _digit_spans(self, text: str, out: list[str], risk: bool) -> None:
        for m in RUN_RE.finditer(text):
            run = m.group()
            groups = [g.group() for g in GROUP_RE.finditer(run)]
            seps = [c for c in run if not c.isdigit()]
            for i in range(len(groups)):
                digits = ""
                for j in range(i, len(groups)):
                    digits += groups[j]
                    n = len(digits)
                    if n > 19:
                        break
                    shape = tuple(len(g) for g in groups[i:j + 1])
                    if n >= 9:
                        self.spans += 1
                    self._span(digits, shape, seps[i:j], out, risk)
            for g in groups:
                if len(g) > 19:
                    out.append("digit run longer than 19")
                if risk:
                    self._embedded(g)
        for m in CNID_X_RE.finditer(text):
            if gb11643_ok(m.group(1)):
                out.append("cn_resident_id")

    def _embedded(self, g: str) -> None:
        """What a detector without digit boundaries would see inside a longer run."""
        n = len(g)
        if n > 11 and CN_MOBILE_ANY_RE.search(g):
            self.risks["risk: 1[3-9] + 9 digits inside a longer digit run (cn_mobile without digit boundaries; e.g. epoch ms)"] += 1
        if n > 12:
            m = AADHAAR_ANY_RE.search(g)
            if m and verhoeff_ok(m.group()):
                self.risks["risk: first [2-9]+11 digits of a longer run pass Verhoeff (in_aadhaar without digit boundaries)"] += 1
        if n > 18 and gb11643_ok(g[:18]):
            self.risks["risk: first 18 digits of a longer run pass GB 11643 (cn_resident_id without digit boundaries)"] += 1

    def _span(self, d: str, shape: tuple, seps: list, out: list[str], risk: bool) -> None:
        n = len(d)
        if 12 <= n <= 19 and luhn_ok(d):
            if card_brand_prefix(d):
                out.append("credit_card")
            elif risk:
                self.risks["risk: Luhn-valid 12-19 digit span without an issuer prefix"] += 1
        if n == 12 and verhoeff_ok(d):
            if d[0] in "23456789":
                out.append("in_aadhaar")
            elif risk:
                self.risks["risk: Verhoeff-valid 12 digits starting 0/1 (not an Aadhaar)"] += 1
        if n == 18 and gb11643_ok(d):
            out.append("cn_resident_id")
        if n == 11 and d[0] == "1" and d[1] in "3456789":
            if len(shape) == 1 or shape == (3, 4, 4):
                out.append("cn_mobile")
            elif risk:
                self.risks["risk: 1[3-9] + 9 digits with other grouping (cn_mobile allowing any separators)"] += 1
        if n == 13 and d.startswith("86") and d[2] == "1" and d[3] in "3456789":
            if len(shape) == 1 or shape in ((2, 11), (2, 3, 4, 4)):
                out.append("cn_mobile")
        if shape == (3, 2, 4):
            out.append("us_ssn")

    # -- IBAN --------------------------------------------------------------
    def _iban(self, text: str, out: list[str], risk: bool) -> None:
        for m in IBAN_HEAD_RE.finditer(text):
            start = m.start()
            cc = text[start:start + 2]
            upper_cc = cc.isupper()
            # collect the candidate body after the 4-char head
            compact = text[start:start + 4]
            k = start + 4
            upper_only = upper_cc
            bodies = []  # (compact string, all-uppercase?)
            while k < len(text) and len(compact) < 34:
                ch = text[k]
                if ch == " " and k + 1 < len(text) and text[k + 1].isalnum() and text[k + 1].isascii():
                    k += 1
                    continue
                if not (ch.isascii() and ch.isalnum()):
                    break
                compact += ch
                if ch.islower():
                    upper_only = False
                bodies.append((compact, upper_only))
                k += 1
            reg = IBAN_LEN.get(cc.upper())
            for s, up in bodies:
                if len(s) < 15:
                    continue
                if up and reg and mod97_ok(s):
                    out.append("iban")
                    return
                if reg and len(s) == reg and mod97_ok(s):
                    out.append("iban")
                    return
                if risk and up and not reg and mod97_ok(s):
                    self.risks["risk: mod-97-valid [A-Z]{2}dd... with a non-IBAN country (e.g. RF creditor reference)"] += 1
                    break

    # -- everything --------------------------------------------------------
    def violations(self, text: str, risk: bool = False) -> list[str]:
        out: list[str] = []
        self._digit_spans(text, out, risk)
        for m in SSN_FALLBACK_RE.finditer(text):
            out.append("us_ssn")
        self._iban(text, out, risk)
        if NINO_RE.search(text):
            out.append("uk_nino")
        if EMAIL_RE.search(text):
            out.append("email")
        if URL_USERINFO_RE.search(text):
            out.append("password_in_url")
        if AUTH_BASIC_RE.search(text):
            out.append("basic_auth_header")
        for m in BASIC_TOKEN_RE.finditer(text):
            tok = m.group(1)
            try:
                dec = base64.b64decode(tok + "=" * (-len(tok) % 4), validate=True)
            except ValueError:
                continue
            if b":" in dec:
                out.append("basic_auth_header")
        for name, rx in PREFIX_RES:
            if rx.search(text):
                out.append(name)
        for m in B64_40_RE.finditer(text):
            t = m.group()
            if re.search(r"[A-Z]", t) and re.search(r"[a-z]", t) and re.search(r"\d", t):
                out.append("aws_secret_access_key")
        for m in AWS_CONTEXT_RE.finditer(text):
            if B64_40_ANY_RE.search(text, m.end(), m.end() + 120):
                out.append("aws_secret_access_key")
        if AZURE_RE.search(text):
            out.append("azure_storage_key")
        if risk:
            for name, rx in RISK_RES:
                self.risks[name] += len(rx.findall(text))
            self.risks["risk: standalone 40-char lowercase hex (SHA-1 / git commit; naive aws_secret regex)"] += len(HEX40_RE.findall(text))
        return out

    def views(self, text: str, kind: str) -> list[str]:
        vs = [text]
        u = urllib.parse.unquote_plus(text) if kind == "form" else urllib.parse.unquote(text)
        if u != text:
            vs.append(u)
        if kind == "json":
            strings: list[str] = []

            def walk(v):
                if isinstance(v, str):
                    strings.append(v)
                elif isinstance(v, dict):
                    for k, x in v.items():
                        strings.append(k)
                        walk(x)
                elif isinstance(v, list):
                    for x in v:
                        walk(x)
            try:
                walk(json.loads(text))
            except ValueError:
                pass
            joined = "\n".join(strings)
            if joined and joined not in vs:
                vs.append(joined)
        return vs

    def clean(self, text: str, kind: str) -> bool:
        bad: list[str] = []
        for v in self.views(text, kind):
            bad += self.violations(v)
        for b in sorted(set(bad)):
            self.reasons[b] += 1
        return not bad


CHK = Checker()
REGEN: collections.Counter[str] = collections.Counter()


def keep(rng: random.Random, gen, serialize, kind: str, label: str):
    """Generate a record until it passes every hard check."""
    for _ in range(10_000):
        rec = gen(rng)
        text = serialize(rec)
        if CHK.clean(text, kind):
            return rec, text
        REGEN[label] += 1
    raise SystemExit(f"could not generate a clean {label}")


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

FIRST = ["Amelia", "Noah", "Olivia", "Liam", "Mia", "Lucas", "Sofia", "Mateo", "Hannah", "Jonas",
         "Emma", "Leon", "Chloé", "Hugo", "Aisha", "Omar", "Priya", "Arjun", "Wei", "Mei",
         "Haruto", "Yui", "Lars", "Ingrid", "Tomás", "Lucía", "Kwame", "Ama", "Mateusz", "Zofia",
         "Rafael", "Beatriz", "Elif", "Emre", "Nadia", "Ivan", "Sara", "Daniel", "Grace", "Samuel"]
LAST = ["Smith", "Müller", "García", "Rossi", "Dubois", "Kowalski", "Nakamura", "Chen", "Wang", "Patel",
        "Sharma", "Okafor", "Mensah", "Johansson", "Novak", "Silva", "Costa", "Yılmaz", "Ivanova",
        "O'Brien", "Murphy", "Fischer", "Lefebvre", "Jensen", "Haddad", "Kim", "Park", "Nguyen",
        "Ortega", "Andersen", "Schneider", "Bianchi", "Lindqvist", "Tanaka", "Zhou", "Singh"]
COMPANIES = ["Northwind Outfitters", "Bluefin Analytics", "Kestrel Logistics", "Harbor & Pine",
             "Lumen Optics GmbH", "Tandem Bikes Ltd", "Copperleaf Studio", "Atlas Field Supply",
             "Orchid Hospitality", "Greybeard Coffee Roasters", "Vantage Print Co.", "Nimbus Rail",
             "Saffron Kitchenware", "Polar Cartography", "Meridian Health Clinics", "Fjord Textiles AS"]

# (city, country, postal generator, phone generator, currency, line1 generator)
def _d(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


def _postal_us(rng):
    z = rng.choice(["94107", "10013", "60607", "78701", "98109", "02139", "30309", "80202"])
    return z if rng.random() < 0.7 else f"{z}-{_d(rng, 4)}"


LOCALES = [
    ("San Francisco", "US", _postal_us, lambda r: f"({r.choice(['415', '628'])}) 555-01{_d(r, 2)}", "USD"),
    ("New York", "US", _postal_us, lambda r: f"({r.choice(['212', '646', '718'])}) 555-01{_d(r, 2)}", "USD"),
    ("Austin", "US", _postal_us, lambda r: f"({r.choice(['512', '737'])}) 555-01{_d(r, 2)}", "USD"),
    ("Toronto", "CA", lambda r: r.choice(["M5V 2T6", "M4W 1A5", "M6J 3L4"]), lambda r: f"(416) 555-01{_d(r, 2)}", "CAD"),
    ("London", "GB", lambda r: r.choice(["SW1A 1AA", "EC1V 9HX", "N1 9GU", "SE1 7PB", "W1D 3QF"]),
     lambda r: r.choice([f"020 7946 0{_d(r, 3)}", f"07700 900{_d(r, 3)}", f"020 7946 0{_d(r, 3)}"]), "GBP"),
    ("Manchester", "GB", lambda r: r.choice(["M1 1AE", "M4 5JD", "M15 4FN"]), lambda r: f"0161 496 0{_d(r, 3)}", "GBP"),
    ("Berlin", "DE", lambda r: r.choice(["10115", "10719", "10999", "12043"]), lambda r: f"030 {_d(r, 3)} {_d(r, 4)}", "EUR"),
    ("München", "DE", lambda r: r.choice(["80331", "80469", "81667"]), lambda r: f"089 {_d(r, 4)} {_d(r, 3)}", "EUR"),
    ("Paris", "FR", lambda r: r.choice(["75002", "75011", "75015"]), lambda r: f"01 99 00 {_d(r, 2)} {_d(r, 2)}", "EUR"),
    ("Amsterdam", "NL", lambda r: r.choice(["1012 JS", "1017 CT", "1071 DJ"]), lambda r: f"020 {_d(r, 3)} {_d(r, 4)}", "EUR"),
    ("Madrid", "ES", lambda r: r.choice(["28013", "28004", "28010"]), lambda r: f"91 {_d(r, 3)} {_d(r, 2)} {_d(r, 2)}", "EUR"),
    ("Warszawa", "PL", lambda r: r.choice(["00-001", "00-950", "02-495"]), lambda r: f"22 {_d(r, 3)} {_d(r, 2)} {_d(r, 2)}", "PLN"),
    ("Sydney", "AU", lambda r: r.choice(["2000", "2010", "2060"]), lambda r: f"02 5550 {_d(r, 4)}", "AUD"),
    ("Tokyo", "JP", lambda r: r.choice(["100-0005", "150-0002", "160-0023"]), lambda r: f"03-{_d(r, 4)}-{_d(r, 4)}", "JPY"),
    ("Beijing", "CN", lambda r: r.choice(["100080", "100027", "100738"]),
     lambda r: r.choice([f"010 6552 {_d(r, 4)}", f"400-{r.choice(['810', '820', '650'])}-{_d(r, 4)}"]), "CNY"),
    ("Shenzhen", "CN", lambda r: r.choice(["518000", "518057"]), lambda r: f"0755 8{_d(r, 3)} {_d(r, 4)}", "CNY"),
    ("Bengaluru", "IN", lambda r: r.choice(["560001", "560034", "560103"]), lambda r: f"080 4{_d(r, 3)} {_d(r, 4)}", "INR"),
    ("São Paulo", "BR", lambda r: r.choice(["01310-100", "04538-133"]), lambda r: f"(11) 3{_d(r, 3)}-{_d(r, 4)}", "BRL"),
]
STREETS = {
    "San Francisco": ["Market Street", "Valencia Street", "Folsom Street"],
    "New York": ["Hudson Street", "West 26th Street", "Atlantic Avenue"],
    "Austin": ["South Congress Avenue", "East 6th Street"],
    "Toronto": ["Queen Street West", "Spadina Avenue"],
    "London": ["Baker Street", "Old Street", "Borough High Street"],
    "Manchester": ["Oxford Road", "Deansgate"],
    "Berlin": ["Kurfürstendamm", "Torstraße", "Oranienstraße"],
    "München": ["Maximilianstraße", "Leopoldstraße"],
    "Paris": ["Rue de Rivoli", "Boulevard Voltaire"],
    "Amsterdam": ["Prinsengracht", "Spui", "Ferdinand Bolstraat"],
    "Madrid": ["Calle de Alcalá", "Calle de Fuencarral"],
    "Warszawa": ["Nowy Świat", "ul. Marszałkowska"],
    "Sydney": ["George Street", "Crown Street"],
    "Tokyo": ["Chuo-dori", "Omotesando"],
    "Beijing": ["Jianguomen Outer Street", "Wangfujing Street"],
    "Shenzhen": ["Shennan Avenue", "Keyuan Road"],
    "Bengaluru": ["Brigade Road", "100 Feet Road, Indiranagar"],
    "São Paulo": ["Avenida Paulista", "Rua Augusta"],
}


def street(rng, city):
    return f"{rng.randint(1, 240)} {rng.choice(STREETS[city])}"

PRODUCTS = [
    ("TS", "Organic Cotton Tee", ["XS", "S", "M", "L", "XL", "XXL"], (14, 32)),
    ("HD", "Midweight Hoodie", ["S", "M", "L", "XL"], (45, 89)),
    ("SCK", "Merino Crew Socks (3-pack)", ["S", "M", "L"], (18, 29)),
    ("BP", "Trailhead 28L Backpack", ["BLK", "OLV", "NVY"], (79, 149)),
    ("MUG", "Stoneware Mug 350 ml", ["WHT", "SND", "CHR"], (12, 22)),
    ("KTL", "Gooseneck Kettle 1.0 L", ["STL", "BLK"], (49, 99)),
    ("LMP", "Brass Desk Lamp", ["BRS", "BLK"], (65, 140)),
    ("CBL", "USB-C Cable 2 m", ["WHT", "BLK"], (9, 19)),
    ("NB", "Dot Grid Notebook A5", ["RED", "BLU", "GRN"], (8, 16)),
    ("JKT", "Packable Rain Jacket", ["S", "M", "L", "XL"], (89, 179)),
    ("SHO", "Trail Runner", ["40", "41", "42", "43", "44", "45"], (95, 160)),
    ("CHR", "Ergonomic Task Chair", ["GRY", "BLK"], (219, 449)),
    ("PAN", "Carbon Steel Skillet 26 cm", ["STD"], (39, 69)),
    ("TWL", "Waffle Bath Towel", ["WHT", "SGE", "CLY"], (19, 35)),
    ("HDP", "Wireless Headphones", ["BLK", "SLV"], (129, 299)),
    ("PLT", "Ceramic Planter 20 cm", ["TER", "WHT"], (24, 48)),
]
CARRIERS = ["UPS", "FedEx", "DHL Express", "USPS", "Royal Mail", "PostNL", "DPD", "Japan Post", "SF Express"]
STATUSES = ["pending", "paid", "processing", "shipped", "delivered", "cancelled", "refunded", "partially_refunded"]
NOTES = ["Leave at reception.", "Gift wrap, no invoice in the parcel please.", "Call on arrival; buzzer 4B is broken.",
         "Deliver after 17:00 on weekdays.", "Customer asked to combine with order placed yesterday.",
         "Replacement for damaged item, see ticket.", "Ship with the next warehouse wave.", "", "", "", ""]


def short_id(rng, n, alphabet="abcdefghijklmnopqrstuvwxyz0123456789"):
    return "".join(rng.choice(alphabet) for _ in range(n))


B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
UPPER_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BASE_TIME = dt.datetime(2024, 2, 1, 0, 0, 0, tzinfo=dt.timezone.utc)


def ts(rng, days=90):
    t = BASE_TIME + dt.timedelta(seconds=rng.randrange(days * 86400), milliseconds=rng.randrange(1000))
    return t


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def uuid4(rng) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hexs(rng, n) -> str:
    return "%0*x" % (n, rng.getrandbits(4 * n))


def long_id(rng, lo=13, hi=19) -> str:
    """Long numeric ids: the near-misses a card detector must not flag."""
    n = rng.randint(lo, hi)
    return rng.choice("123456789") + _d(rng, n - 1)


def money(rng, lo, hi) -> str:
    return f"{rng.uniform(lo, hi):.2f}"


def sku(rng):
    code, name, variants, price = rng.choice(PRODUCTS)
    return f"{code}-{_d(rng, 4)}-{rng.choice(variants)}", name, price


def tracking(rng, carrier):
    if carrier == "UPS":
        return "1Z" + "".join(rng.choice(UPPER_ALNUM) for _ in range(6)) + _d(rng, 10)
    if carrier == "FedEx":
        return _d(rng, rng.choice([12, 15]))
    if carrier == "USPS":
        return "9400 " + " ".join(_d(rng, 4) for _ in range(4)) + " " + _d(rng, 2)
    if carrier in ("Royal Mail", "Japan Post"):
        return rng.choice(["RR", "LX", "CP", "EE"]) + _d(rng, 9) + ("GB" if carrier == "Royal Mail" else "JP")
    if carrier == "PostNL":
        return "3S" + "".join(rng.choice(UPPER_ALNUM[10:]) for _ in range(4)) + _d(rng, 9)
    if carrier == "SF Express":
        return "SF" + _d(rng, 13)
    return _d(rng, 10 if carrier == "DHL Express" else 14)


def handle(rng):
    f, l = rng.choice(FIRST), rng.choice(LAST)
    base = (f[0] + l).lower()
    base = "".join(c for c in base if c.isascii() and c.isalnum())
    return "@" + base + (str(rng.randint(1, 99)) if rng.random() < 0.4 else "")


def rf_reference(rng) -> str:
    """ISO 11649 creditor reference (RF + mod-97 check digits): not an IBAN."""
    body = _d(rng, rng.randint(10, 16))
    check = 98 - int("".join(str(int(c, 36)) for c in body + "RF00")) % 97
    s = f"RF{check:02d}{body}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


# ---------------------------------------------------------------------------
# orders.json
# ---------------------------------------------------------------------------


def gen_order(rng):
    city, cc, postal, phone, cur = rng.choice(LOCALES)
    created = ts(rng)
    lines = []
    for i in range(rng.choice([1, 1, 2, 2, 3, 4, 6])):
        s, name, (lo, hi) = sku(rng)
        gtin = rng.choice(["4", "5", "0", "7", "8", "3"]) + _d(rng, 12)
        lines.append({
            "line_id": i + 1,
            "sku": s,
            "gtin": gtin,
            "name": name,
            "quantity": rng.choice([1, 1, 1, 2, 2, 3, 5, 10]),
            "unit_price": money(rng, lo, hi),
            "tax_rate": rng.choice(["0.19", "0.20", "0.21", "0.0875", "0.10", "0.07", "0.00"]),
        })
    subtotal = sum(float(l["unit_price"]) * l["quantity"] for l in lines)
    shipping = rng.choice([0.0, 4.95, 5.90, 9.99, 14.50])
    tax = subtotal * 0.12
    status = rng.choice(STATUSES)
    method = rng.choice(["card", "card", "card", "paypal", "bank_transfer", "apple_pay", "klarna"])
    payment = {"method": method, "status": "captured" if status not in ("pending", "cancelled") else "authorized"}
    if method in ("card", "apple_pay"):
        payment.update({
            "brand": rng.choice(["visa", "mastercard", "amex", "discover", "jcb", "unionpay"]),
            "last4": _d(rng, 4),
            "exp_month": rng.randint(1, 12),
            "exp_year": rng.randint(2025, 2031),
            "auth_code": _d(rng, 6),
            "psp_reference": rng.choice(["88", "85", "79", "99"]) + _d(rng, 14),
            "transaction_id": long_id(rng, 16, 19),
        })
    elif method == "bank_transfer":
        payment.update({"payment_reference": rf_reference(rng), "bank_bic": rng.choice(["DEUTDEFF", "INGBNL2A", "BNPAFRPP", "NWBKGB2L"])})
    elif method == "paypal":
        payment.update({"capture_id": "".join(rng.choice(UPPER_ALNUM) for _ in range(17)), "payer_handle": handle(rng)})
    else:
        payment.update({"session_id": uuid4(rng)})
    order = {
        "id": uuid4(rng),
        "object": "order",
        "order_number": f"ORD-{created:%Y}-{created:%m%d}-{_d(rng, 6)}",
        "external_order_id": long_id(rng),
        "status": status,
        "created_at": iso(created),
        "updated_at": iso(created + dt.timedelta(minutes=rng.randint(1, 9000))),
        "created_at_ms": ms(created),
        "currency": cur,
        "channel": rng.choice(["web", "ios", "android", "pos", "marketplace"]),
        "customer": {
            "id": "cus_" + "".join(rng.choice(B62) for _ in range(14)),
            "handle": handle(rng),
            "display_name": f"{rng.choice(FIRST)} {rng.choice(LAST)[0]}.",
            "phone": phone(rng),
            "loyalty_number": _d(rng, 10),
            "segment": rng.choice(["new", "returning", "vip", "wholesale"]),
        },
        "shipping_address": {
            "line1": street(rng, city),
            "line2": rng.choice(["", "", f"Apt {rng.randint(1, 40)}", f"Unit {rng.randint(100, 999)}", "2nd floor"]),
            "city": city,
            "postal_code": postal(rng),
            "country": cc,
        },
        "lines": lines,
        "totals": {
            "subtotal": f"{subtotal:.2f}",
            "shipping": f"{shipping:.2f}",
            "tax": f"{tax:.2f}",
            "discount": rng.choice(["0.00", "0.00", "5.00", f"{subtotal * 0.1:.2f}"]),
            "total": f"{subtotal + shipping + tax:.2f}",
        },
        "payment": payment,
        "notes": rng.choice(NOTES),
    }
    if rng.random() < 0.3:
        order["marketplace_order_id"] = f"{_d(rng, 3)}-{_d(rng, 7)}-{_d(rng, 7)}"
    if rng.random() < 0.15:
        order["voucher_code"] = f"GIFT-{_d(rng, 4)}-{_d(rng, 4)}-{_d(rng, 4)}"
    if status in ("shipped", "delivered", "partially_refunded", "refunded"):
        carrier = rng.choice(CARRIERS)
        shipped = created + dt.timedelta(hours=rng.randint(3, 72))
        order["fulfillment"] = {
            "carrier": carrier,
            "tracking_number": tracking(rng, carrier),
            "tracking_url": f"https://track.example.com/{carrier.split()[0].lower()}/{uuid4(rng)}",
            "shipped_at": iso(shipped),
            "estimated_delivery": (shipped + dt.timedelta(days=rng.randint(1, 7))).strftime("%Y-%m-%d"),
            "warehouse": rng.choice(["AMS-1", "FRA-2", "LHR-3", "EWR-1", "SZX-1", "BLR-2"]),
            "parcel_weight_g": rng.randint(90, 18000),
        }
    if status in ("refunded", "partially_refunded"):
        order["refunds"] = [{
            "id": "re_" + "".join(rng.choice(B62) for _ in range(20)),
            "amount": money(rng, 5, subtotal + 1),
            "reason": rng.choice(["damaged", "wrong_size", "late_delivery", "customer_request"]),
            "processor_refund_id": long_id(rng, 15, 19),
            "created_at": iso(created + dt.timedelta(days=rng.randint(2, 30))),
        }]
    order["metadata"] = {"cart_id": uuid4(rng), "ab_bucket": rng.choice(["control", "free-shipping-banner", "one-page-checkout"]),
                         "client_version": f"{rng.randint(3, 7)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}"}
    return order


def build_orders(rng, pages):
    out = []
    n = 0
    for page in range(1, pages + 1):
        data = []
        for _ in range(rng.choice([10, 20, 25])):
            rec, _ = keep(rng, gen_order, lambda o: json.dumps(o, indent=2, ensure_ascii=False), "json", "order")
            data.append(rec)
        n += len(data)
        cursor = base64.b64encode(f"offset:{n}".encode()).decode().rstrip("=")
        resp = {
            "object": "list",
            "url": "/v2/orders",
            "request_id": "req_" + hexs(rng, 24),
            "page": page,
            "has_more": page < pages,
            "next_cursor": cursor if page < pages else None,
            "generated_at": iso(ts(rng)),
            "data": data,
        }
        out.append(resp)
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------
# events.jsonl
# ---------------------------------------------------------------------------

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.112 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.105 Mobile Safari/537.36",
    "ShopApp/6.12.0 (iOS 17.3; iPhone15,2; build 61203)",
    "ShopApp/6.11.4 (Android 13; SM-S911B; build 61140)",
    "okhttp/4.12.0", "python-requests/2.31.0", "curl/8.6.0", "Go-http-client/2.0", "kube-probe/1.29",
    "Envoy/1.29.2", "axios/1.6.7", "PostmanRuntime/7.36.3",
]
PATHS = ["/v2/orders", "/v2/orders/{id}", "/v2/orders/{id}/refunds", "/v2/products", "/v2/products/{sku}",
         "/v2/carts/{id}", "/v2/carts/{id}/items", "/v2/shipments/{id}/events", "/v2/inventory/{sku}",
         "/healthz", "/readyz", "/metrics", "/v1/search", "/v2/customers/{id}/addresses"]
SERVICES = ["checkout", "orders", "catalog", "inventory", "shipping", "payments-gateway", "search", "notifications",
            "pricing", "returns", "edge-proxy", "recommendations", "risk-scoring"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1", "ap-northeast-1"]


def ip(rng):
    return rng.choice([
        f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        f"192.0.2.{rng.randint(1, 254)}", f"198.51.100.{rng.randint(1, 254)}", f"203.0.113.{rng.randint(1, 254)}",
        f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        f"2001:db8:{rng.randint(0, 0xffff):x}::{rng.randint(1, 0xffff):x}",
    ])


def gen_event(rng):
    t = ts(rng)
    kind = rng.choices(["http", "deploy", "cache", "job", "kafka", "db", "build", "audit", "payment"],
                       [40, 4, 8, 8, 8, 8, 5, 8, 11])[0]
    svc = rng.choice(SERVICES)
    ev = {"ts": iso(t), "ts_unix_ms": ms(t), "level": "info", "service": svc,
          "region": rng.choice(REGIONS), "host": f"{svc}-{hexs(rng, 9)}-{short_id(rng, 5)}",
          "event": kind}
    if kind == "http":
        p = rng.choice(PATHS).replace("{id}", uuid4(rng)).replace("{sku}", sku(rng)[0])
        status = rng.choices([200, 201, 204, 304, 400, 401, 403, 404, 409, 429, 500, 502, 503], [50, 8, 6, 5, 4, 2, 2, 6, 2, 3, 1, 1, 1])[0]
        ev.update({
            "method": rng.choice(["GET", "GET", "GET", "POST", "PUT", "PATCH", "DELETE"]),
            "path": p, "query": rng.choice(["", "", f"page={rng.randint(1, 40)}&per_page=25",
                                            f"updated_since={t:%Y-%m-%d}&status=shipped", f"q=trail+runner&size={rng.randint(38, 46)}"]),
            "status": status, "duration_ms": round(rng.lognormvariate(3.2, 0.9), 3),
            "upstream_ms": rng.randint(0, 900), "bytes_in": rng.randint(0, 20000), "bytes_out": rng.randint(0, 250000),
            "client_ip": ip(rng), "user_agent": rng.choice(UAS),
            "request_id": uuid4(rng), "trace_id": hexs(rng, 32), "span_id": hexs(rng, 16),
        })
        if status >= 500:
            ev["level"] = "error"
        elif status >= 400:
            ev["level"] = "warn"
    elif kind == "deploy":
        ev.update({"git_commit": hexs(rng, 40), "image": f"registry.example.com/shop/{ev['service']}@sha256:{hexs(rng, 64)}",
                   "version": f"v{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}",
                   "replicas": rng.randint(2, 24), "rollout": rng.choice(["canary", "blue-green", "rolling"]),
                   "pipeline_run": long_id(rng, 10, 11)})
    elif kind == "cache":
        ev.update({"op": rng.choice(["get", "set", "evict"]), "hit": rng.random() < 0.8,
                   "key_sha1": hexs(rng, 40), "ttl_s": rng.choice([30, 60, 300, 3600, 86400]),
                   "size_bytes": rng.randint(64, 900000)})
    elif kind == "job":
        ev.update({"job": rng.choice(["reindex-products", "send-abandoned-cart", "settle-payouts", "sync-inventory",
                                      "expire-reservations", "export-orders-csv"]),
                   "job_id": uuid4(rng), "attempt": rng.randint(1, 5), "duration_ms": rng.randint(40, 3_600_000),
                   "items": rng.randint(0, 250000), "queue_lag_s": round(rng.uniform(0, 120), 2)})
    elif kind == "kafka":
        ev.update({"topic": rng.choice(["orders.v2", "inventory.changes", "payments.captured", "shipments.events"]),
                   "partition": rng.randint(0, 47), "offset": rng.randint(10_000_000, 9_999_999_999),
                   "consumer_group": rng.choice(["search-indexer", "warehouse-sync", "analytics-loader"]),
                   "lag": rng.randint(0, 40000), "message_id": long_id(rng, 18, 19)})
    elif kind == "db":
        ev.update({"db": rng.choice(["orders-primary", "catalog-replica-2", "inventory"]),
                   "statement_fingerprint": hexs(rng, 16), "query_md5": hexs(rng, 32),
                   "rows": rng.randint(0, 500000), "duration_ms": round(rng.uniform(100, 12000), 1),
                   "table": rng.choice(["orders", "order_lines", "shipments", "stock_levels", "carts"])})
        ev["level"] = "warn"
    elif kind == "build":
        ev.update({"artifact": f"{ev['service']}-{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}-linux-amd64.tar.gz",
                   "sha256": hexs(rng, 64), "size_bytes": rng.randint(2_000_000, 400_000_000),
                   "commit": hexs(rng, 40), "short_commit": hexs(rng, 7), "build_number": rng.randint(1000, 99999)})
    elif kind == "audit":
        ev.update({"actor": handle(rng), "action": rng.choice(["order.refund", "product.update", "price.override",
                                                            "user.role.grant", "export.create", "webhook.update"]),
                   "resource": rng.choice([f"order/{uuid4(rng)}", f"sku/{sku(rng)[0]}", f"export/{hexs(rng, 12)}"]),
                   "source_ip": ip(rng), "session": hexs(rng, 32), "mfa": rng.random() < 0.9})
    else:
        ev.update({"payment_id": "pay_" + "".join(rng.choice(B62) for _ in range(18)),
                   "amount_minor": rng.randint(199, 250000), "currency": rng.choice(["EUR", "USD", "GBP", "JPY", "CNY"]),
                   "processor": rng.choice(["adyen", "stripe", "paypal", "worldpay"]),
                   "processor_txn_id": long_id(rng, 13, 19), "card_bin_country": rng.choice(["DE", "US", "GB", "FR", "JP", "IN"]),
                   "three_ds": rng.choice(["frictionless", "challenge", "not_enrolled"]),
                   "risk_score": rng.randint(0, 99), "order_number": f"ORD-{t:%Y}-{t:%m%d}-{_d(rng, 6)}"})
    return ev


def build_events(rng, n):
    lines = []
    for _ in range(n):
        escaped = rng.random() < 0.15  # some producers escape "/" and non-ASCII (PHP's json_encode)
        _, text = keep(rng, gen_event, (lambda e: json.dumps(e, separators=(",", ":")).replace("/", "\\/")) if escaped
                       else (lambda e: json.dumps(e, ensure_ascii=False, separators=(",", ":"))), "json", "event")
        lines.append(text)
    lines.sort()  # chronological, like a log file
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# images.json
# ---------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _stored_zlib(data: bytes) -> bytes:
    """zlib stream with stored (uncompressed) deflate blocks: byte-for-byte
    identical on every zlib build, and noise would not compress anyway."""
    out = bytearray(b"\x78\x01")
    for i in range(0, len(data), 65535):
        block = data[i:i + 65535]
        final = 1 if i + 65535 >= len(data) else 0
        out += bytes([final]) + struct.pack("<HH", len(block), 0xFFFF ^ len(block)) + block
    out += struct.pack(">I", zlib.adler32(data) & 0xFFFFFFFF)
    return bytes(out)


def png(rng, w, h) -> bytes:
    raw = bytearray()
    for _ in range(h):
        raw.append(0)
        raw += rng.randbytes(w * 3)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", _stored_zlib(bytes(raw)))
    # pad with a tEXt chunk so the length is 0 or 2 mod 3: base64 then ends with
    # no "=" or a single "=" (never "==", see the azure_storage_key check)
    comment = b"Comment\x00thumbnail"
    while (len(body) + 12 + len(comment) + 12) % 3 == 1:
        comment += b" "
    return body + _png_chunk(b"tEXt", comment) + _png_chunk(b"IEND", b"")


def jpeg_ish(rng, n) -> bytes:
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x01\x00H\x00H\x00\x00"
    body = rng.randbytes(n)
    data = head + body + b"\xff\xd9"
    while len(data) % 3 == 1:
        data = data[:-2] + rng.randbytes(1) + b"\xff\xd9"
    return data


def gen_image(rng):
    w, h = rng.choice([(32, 32), (48, 48), (64, 40), (40, 60), (56, 42), (72, 36)])
    s, name, _ = sku(rng)
    if rng.random() < 0.75:
        data, mime, ext = png(rng, w, h), "image/png", "png"
    else:
        data, mime, ext = jpeg_ish(rng, rng.randint(3000, 9000)), "image/jpeg", "jpg"
    b64 = base64.b64encode(data).decode()
    rec = {"id": uuid4(rng), "sku": s, "alt": f"{name}, front view", "filename": f"{s.lower()}-{w}x{h}.{ext}",
           "mime_type": mime, "width": w, "height": h, "bytes": len(data),
           "sha256": hexs(rng, 64), "uploaded_at": iso(ts(rng))}
    if rng.random() < 0.3:
        rec["data_uri"] = f"data:{mime};base64,{b64}"
    else:
        rec["data_base64"] = b64
    return rec


def build_images(rng, n):
    items = []
    for _ in range(n):
        rec, _ = keep(rng, gen_image, lambda r: json.dumps(r), "json", "image")
        items.append(rec)
    doc = {"object": "list", "url": "/v2/media?include=data", "count": len(items), "data": items}
    return json.dumps(doc, indent=1) + "\n"


# ---------------------------------------------------------------------------
# prose.md
# ---------------------------------------------------------------------------

COMPONENTS = ["checkout service", "order export job", "search indexer", "inventory sync", "webhook dispatcher",
              "payments gateway client", "returns portal", "shipping label renderer", "price rules engine",
              "mobile cart screen", "CSV importer", "admin dashboard", "tax calculator", "address validator"]
DEPS = [("serde", "1.0.196", "1.0.197"), ("tokio", "1.35.1", "1.36.0"), ("openssl", "3.0.12", "3.0.13"),
        ("react", "18.2.0", "18.3.1"), ("django", "4.2.9", "4.2.11"), ("postgres", "15.5", "15.6"),
        ("envoy", "1.28.1", "1.29.2"), ("protobuf", "25.2", "25.3"), ("lodash", "4.17.20", "4.17.21"),
        ("grpc-go", "1.61.0", "1.62.1"), ("kafka-clients", "3.6.1", "3.7.0"), ("nginx", "1.25.3", "1.25.4")]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
TICKET_SUBJECTS = [
    ("Duplicate charge after timeout", "Charged twice for one order"),
    ("Tracking page shows no updates", "Parcel stuck at label created"),
    ("Invoice shows the wrong VAT rate", "VAT rate on invoice is wrong"),
    ("Bulk price import failed", "CSV import rejects prices"),
    ("Discount code rejected at checkout", "Coupon not applied"),
    ("Webhook deliveries delayed", "Webhooks queued for over an hour"),
]


def release_notes(rng):
    major, minor = rng.randint(2, 6), rng.randint(0, 40)
    out = []
    d = ts(rng, 300)
    patch = rng.randint(0, 3)
    for _ in range(rng.randint(2, 4)):
        patch += rng.randint(1, 3)
        d += dt.timedelta(days=rng.randint(5, 30))
        out.append(f"## v{major}.{minor}.{patch} ({d:%Y-%m-%d})\n")
        comp = rng.choice(COMPONENTS)
        dep = rng.choice(DEPS)
        candidates = [
                f"- Fixed a crash in the {comp} when an order had more than {rng.choice([99, 250, 1000])} line items (#{rng.randint(1000, 9999)}).",
                f"- The {comp} now retries failed calls up to {rng.randint(3, 8)} times with exponential backoff, starting at {rng.choice([50, 100, 250])} ms.",
                f"- Bumped {dep[0]} from {dep[1]} to {dep[2]}.",
                f"- Reduced p99 latency of `GET /v2/orders/{{id}}` from {rng.randint(180, 900)} ms to {rng.randint(40, 170)} ms at {rng.choice([800, 1500, 4000])} req/s on the reference cluster.",
                f"- Deprecated the `legacy_status` field on `Order`; it will be removed in v{major + 1}.0, planned for {rng.choice(MONTHS)} {rng.randint(2024, 2025)}.",
                f"- Order numbers such as ORD-{d:%Y}-{d:%m%d}-{_d(rng, 6)} are now accepted in the search box, with or without dashes.",
                f"- Commit {hexs(rng, 7)}: the {comp} logs the request id instead of the full payload.",
                f"- Large exports (over {rng.randint(2, 9)}00 000 rows) are split into files of {rng.choice([50, 100, 250])} MB; see the export guide.",
                f"- Prices are rounded half-to-even in {rng.choice(['EUR', 'GBP', 'CHF', 'SEK'])}; a {rng.choice(['19.995', '4.125', '0.005'])} total now rounds consistently.",
                f"- Webhook payloads carry `event_id` and `attempt`; consumers should deduplicate on `event_id`.",
                f"- The {comp} accepts transaction ids up to 19 digits (previously 16), e.g. {long_id(rng, 17, 19)}.",
                f"- Shipment tracking for {rng.choice(CARRIERS)} polls every {rng.choice([5, 10, 15, 30])} minutes instead of hourly.",
                f"- Memory use of the {comp} dropped from {rng.randint(600, 1400)} MiB to {rng.randint(150, 580)} MiB after switching to streaming JSON parsing.",
                f"- Added the `X-Request-Id` response header to every endpoint; quote it when you contact support.",
                f"- Container images are now signed; the digest for this release is sha256:{hexs(rng, 64)}.",
                f"- The disk-usage alert for the {comp} now fires at {rng.choice([80, 85])}% instead of 90%.",
                f"- Merchants on the Basic plan can export up to {rng.choice([5, 10, 25])} 000 orders per file.",
                f"- The task-runner pool for the {comp} scales between {rng.randint(2, 4)} and {rng.randint(12, 40)} workers.",
                f"- The risk-scoring service rejects carts above {rng.choice([2500, 5000, 10000])}.00 EUR from accounts younger than {rng.randint(1, 7)} days.",
            ]
        items = [candidates[i] for i in sorted(rng.sample(range(len(candidates)), rng.randint(4, 8)))]
        rng.shuffle(items)
        out.append("\n".join(items) + "\n")
    return "\n".join(out)


def ticket(rng):
    city, cc, postal, phone, cur = rng.choice(LOCALES)
    t = ts(rng)
    carrier = rng.choice(CARRIERS)
    order_no = f"ORD-{t:%Y}-{t:%m%d}-{_d(rng, 6)}"
    amount = money(rng, 12, 640)
    who = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    agent = rng.choice(FIRST)
    pick = rng.randrange(len(TICKET_SUBJECTS))
    thr = rng.choice([50, 75, 100])
    below = money(rng, thr * 0.8, thr * 0.99)
    body = [
        f"Customer reports that order {order_no} (external id {long_id(rng)}) was charged {amount} {cur} twice. "
        f"The first attempt timed out after {rng.randint(20, 60)} seconds at the payment step and the app retried. "
        f"Processor reference for the second charge: {long_id(rng, 16, 19)}.",
        f"The parcel for order {order_no} shows \"label created\" since {t:%d %B}. Carrier is {carrier}, "
        f"tracking number {tracking(rng, carrier)}. Warehouse confirms it left on {(t + dt.timedelta(days=1)):%Y-%m-%d} at "
        f"{rng.randint(6, 22):02d}:{rng.randint(0, 59):02d}.",
        f"Invoice INV-{t:%Y}-{_d(rng, 6)} applies {rng.choice(['19', '20', '21', '7'])}% VAT instead of the reduced rate. "
        f"Customer's VAT registration was updated on {t:%Y-%m-%d}; the cached tax profile (key {hexs(rng, 12)}) was not invalidated.",
        f"Bulk import of {rng.randint(200, 9000)} SKUs failed at row {rng.randint(2, 8000)} with \"price must be positive\". "
        f"The file has prices like 1.299,00 (comma decimal) for SKU {sku(rng)[0]}.",
        f"Discount code SPRING{t:%y}-{_d(rng, 4)} was rejected for cart {uuid4(rng)}. The cart total was {below} {cur}, "
        f"just under the {thr}.00 minimum after the {rng.choice([10, 15, 20])}% member discount was applied first.",
        f"Webhook endpoint returned HTTP {rng.choice([502, 503, 504])} for {rng.randint(3, 90)} minutes; "
        f"{rng.randint(100, 5000)} deliveries are queued. Oldest event id is evt_{hexs(rng, 24)}.",
    ][pick]
    detail = rng.choice([
        f"Customer can be reached on {phone(rng)} between 09:00 and 17:00 local time; shipping postcode {postal(rng)}.",
        f"{agent} checked the request logs (request id {uuid4(rng)}); the API answered {rng.choice([200, 409, 422])} "
        f"in {rng.randint(80, 4000)} ms.",
        f"Affected orders so far: {', '.join(f'ORD-{t:%Y}-{t:%m%d}-{_d(rng, 6)}' for _ in range(rng.randint(2, 5)))}.",
        f"Customer is on app version {rng.randint(5, 6)}.{rng.randint(0, 14)}.{rng.randint(0, 9)} (build {rng.randint(50000, 61999)}).",
    ])
    resolution = [
        lambda: rng.choice([
            f"refund of {amount} {cur} issued on {(t + dt.timedelta(days=2)):%Y-%m-%d} under refund id {long_id(rng, 15, 19)}; "
            f"it usually appears on the statement within 5 to 10 business days.",
            f"duplicate authorisation voided; only one capture of {amount} {cur} remains (capture {long_id(rng, 13, 16)}).",
        ]),
        lambda: rng.choice([
            f"reshipped as order {order_no}-R1 with {carrier}; the original parcel will be returned to the "
            f"{rng.choice(['AMS-1', 'FRA-2', 'LHR-3', 'EWR-1'])} warehouse.",
            f"escalated to the carrier, case {_d(rng, 9)}; we will follow up by {(t + dt.timedelta(days=5)):%A %d %B}.",
        ]),
        lambda: f"fixed in v{rng.randint(3, 6)}.{rng.randint(0, 40)}.{rng.randint(0, 9)} (commit {hexs(rng, 40)}); "
                f"the cache is now keyed by account and tax year.",
        lambda: "the customer corrected the decimal separator and re-ran the import; all rows accepted.",
        lambda: f"explained the {thr}.00 {cur} threshold; customer placed a new order, no further action.",
        lambda: f"endpoint recovered at {(t + dt.timedelta(minutes=rng.randint(5, 90))):%H:%M} UTC; "
                f"the backlog drained in {rng.randint(2, 40)} minutes.",
    ][pick]()
    paras = [
        f"### Ticket #{rng.randint(40000, 99999)}: {TICKET_SUBJECTS[pick][rng.randrange(2)]}\n",
        f"**Opened:** {t:%Y-%m-%d %H:%M} UTC · **Priority:** P{rng.randint(1, 4)} · **Customer:** {rng.choice(COMPANIES)} "
        f"(account {_d(rng, 8)}, {city}, {cc}) · **Contact:** {who} ({handle(rng)})\n",
        body + "\n",
        detail + "\n",
        f"**Resolution:** {resolution}\n",
    ]
    return "\n".join(paras)


ADJ = ["lightweight", "durable", "water-resistant", "hand-finished", "recycled", "organic", "modular", "compact",
       "breathable", "dishwasher-safe", "machine-washable", "stackable", "foldable", "low-profile"]


def product(rng):
    code, name, variants, (lo, hi) = rng.choice(PRODUCTS)
    variant = rng.choice(variants)
    s = f"{code}-{_d(rng, 4)}-{variant}"
    gtin = rng.choice("04578") + _d(rng, 12)
    a, b = rng.sample(ADJ, 2)
    price = money(rng, lo, hi)
    return (
        f"## {name} ({variant})\n\n"
        f"SKU {s} · GTIN {gtin} · {price} EUR · ships in {rng.randint(1, 5)} to {rng.randint(6, 12)} business days\n\n"
        f"A {a}, {b} {name[0].lower() + name[1:]} designed in {rng.choice(['Copenhagen', 'Portland', 'Kyoto', 'Porto', 'Melbourne'])}. "
        f"{rng.choice(['Weighs', 'Comes in at'])} {rng.randint(80, 2400)} g and {rng.choice(['is covered by', 'comes with'])} "
        f"a {rng.choice([2, 3, 5])}-year warranty. "
        f"{rng.choice(['Over', 'More than'])} {rng.randint(2, 40)},{_d(rng, 3)} sold since {rng.randint(2016, 2023)}; "
        f"rated {rng.randint(38, 49) / 10} out of 5 from {rng.randint(120, 9000)} reviews. "
        f"Batch {_d(rng, 6)}-{_d(rng, 2)} was made in {rng.choice(['Portugal', 'Vietnam', 'Lithuania', 'Mexico', 'Italy'])} "
        f"and certified under {rng.choice(['OEKO-TEX Standard 100', 'GOTS', 'FSC', 'EN 12520', 'ISO 9001:2015'])}.\n"
    )


def build_prose(rng, target):
    parts = ["# Shop platform: release notes, support log and catalogue copy\n",
             "This document collects release notes, anonymised support tickets and product copy "
             "from the shop platform. Customers are referred to by their in-app handle only.\n"]
    size = sum(len(p.encode()) for p in parts)
    gens = [(release_notes, "release_notes"), (ticket, "ticket"), (ticket, "ticket"), (product, "product"), (product, "product")]
    while size < target:
        g, label = rng.choice(gens)
        _, text = keep(rng, g, lambda s: s, "text", label)
        parts.append(text)
        size += len(text.encode()) + 1
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# form.txt
# ---------------------------------------------------------------------------

ENC = lambda s: urllib.parse.quote_plus(s, safe="")


def gen_form(rng):
    kind = rng.choice(["add_to_cart", "checkout", "search", "review", "address", "newsletter_prefs", "return"])
    city, cc, postal, phone, cur = rng.choice(LOCALES)
    f: list[tuple[str, str]] = [("form", kind), ("csrf_token", hexs(rng, 32))]
    if kind == "add_to_cart":
        f += [("sku", sku(rng)[0]), ("qty", str(rng.randint(1, 12))), ("cart_id", uuid4(rng)),
              ("source", rng.choice(["pdp", "plp", "recs", "wishlist"])), ("price_shown", money(rng, 5, 300))]
    elif kind == "checkout":
        f += [("cart_id", uuid4(rng)), ("shipping_method", rng.choice(["standard", "express", "pickup"])),
              ("name", f"{rng.choice(FIRST)} {rng.choice(LAST)}"), ("phone", phone(rng)),
              ("address1", street(rng, city)), ("city", city), ("postal_code", postal(rng)),
              ("country", cc), ("coupon", rng.choice(["", "SPRING24", "WELCOME10", f"VIP-{_d(rng, 4)}"])),
              ("gift_message", rng.choice(["", "Happy birthday! Love, M.", "Congrats on the new flat :)", "Für Oma – alles Gute!"])),
              ("accept_terms", "on"), ("return_url", f"https://shop.example.com/checkout/{uuid4(rng)}/complete?step=3")]
    elif kind == "search":
        f += [("q", rng.choice(["trail runner 42", "merino socks", "desk lamp brass", "rain jacket xl", "mug 350 ml",
                                "order ORD-2024", "usb-c cable 2m"])), ("page", str(rng.randint(1, 9))),
              ("sort", rng.choice(["relevance", "price_asc", "price_desc", "newest"])), ("min_price", str(rng.randint(0, 50))),
              ("max_price", str(rng.randint(60, 500)))]
    elif kind == "review":
        f += [("sku", sku(rng)[0]), ("rating", str(rng.randint(1, 5))), ("title", rng.choice(["Great value", "Runs small",
              "Broke after 2 weeks", "Exactly as described", "Colour differs from photo"])),
              ("body", rng.choice(["Ordered size 43 on 2024-02-11, arrived in 3 days. Fits well after a week of use.",
                                   "The 350 ml mug is more like 300 ml when you leave room at the top.",
                                   "Second one I bought; the first lasted 4 years of daily commuting.",
                                   "Strap stitching came loose, replaced under warranty (case 58213)."])),
              ("order_number", f"ORD-2024-{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}-{_d(rng, 6)}")]
    elif kind == "address":
        f += [("address_id", uuid4(rng)), ("line1", street(rng, city)),
              ("line2", rng.choice(["", "Apt 12", "c/o reception"])), ("city", city), ("postal_code", postal(rng)),
              ("country", cc), ("phone", phone(rng)), ("default", rng.choice(["true", "false"]))]
    elif kind == "newsletter_prefs":
        f += [("handle", handle(rng)), ("topics[]", "new-arrivals"), ("topics[]", rng.choice(["sales", "restocks", "journal"])),
              ("frequency", rng.choice(["weekly", "monthly"])), ("locale", rng.choice(["en-GB", "de-DE", "fr-FR", "ja-JP", "zh-CN"]))]
    else:
        f += [("order_number", f"ORD-2024-{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}-{_d(rng, 6)}"),
              ("line_id", str(rng.randint(1, 6))), ("reason", rng.choice(["too_small", "too_large", "damaged", "not_as_described"])),
              ("refund_to", rng.choice(["original_payment", "store_credit"])), ("label_format", rng.choice(["pdf", "zpl"])),
              ("external_order_id", long_id(rng))]
    return "&".join(f"{ENC(k)}={ENC(v)}" for k, v in f)


def records(rng, gen, kind: str, label: str, target: int, sep: str) -> list[str]:
    """Clean records of `gen` until they and their separators reach `target` characters."""
    out, size = [], 0
    while size < target:
        _, text = keep(rng, gen, lambda s: s, kind, label)
        out.append(text)
        size += len(text) + len(sep)
    return out


def build_form(rng, target):
    return "\n".join(records(rng, gen_form, "form", "form body", target, "\n")) + "\n"


# ---------------------------------------------------------------------------
# manifests.yaml
# ---------------------------------------------------------------------------
# Kubernetes manifests, Helm values, Istio resources and CI workflows, as a
# GitOps controller or a CI runner sends them to an API: vendor names as
# values (agents, images, hosts), credential names whose values are
# references (secretKeyRef, ${{ secrets.X }}, Helm templates), image digests,
# cloud account ids in ARNs.

AGENTS = [  # name, image, env pairs (plain values only)
    ("datadog-agent", "gcr.io/datadoghq/agent", [("DD_SITE", "datadoghq.eu"), ("DD_LOGS_ENABLED", "true"),
                                                 ("DD_APM_NON_LOCAL_TRAFFIC", "true"), ("DD_CLUSTER_NAME", "shop-prod")]),
    ("newrelic-infra", "newrelic/infrastructure-k8s", [("NRIA_CLUSTER_NAME", "shop-prod"), ("NRIA_VERBOSE", "0"),
                                                       ("NRIA_PASSTHROUGH_ENVIRONMENT", "KUBERNETES_SERVICE_HOST")]),
    ("grafana-agent", "grafana/agent", [("AGENT_MODE", "flow"), ("GRAFANA_CLOUD_STACK", "shopprod"),
                                        ("HOSTNAME", "$(NODE_NAME)")]),
    ("fluent-bit", "cr.fluentbit.io/fluent/fluent-bit", [("FLB_LOG_LEVEL", "info"), ("SPLUNK_HOST", "http-inputs-shop.splunkcloud.com")]),
    ("sentry-relay", "getsentry/relay", [("RELAY_MODE", "managed"), ("RELAY_UPSTREAM_URL", "https://sentry.io/")]),
    ("otel-collector", "otel/opentelemetry-collector-contrib", [("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod"),
                                                                ("GOMEMLIMIT", "1600MiB")]),
]
AGENT_SECRETS = {"datadog-agent": ("DD_API_KEY", "DD_APP_KEY"), "newrelic-infra": ("NEW_RELIC_LICENSE_KEY",),
                 "grafana-agent": ("GRAFANA_API_KEY",), "sentry-relay": ("SENTRY_DSN",)}
SECRET_REFS = [  # env name, secret, key
    ("DD_API_KEY", "datadog-secret", "api-key"), ("DD_APP_KEY", "datadog-secret", "app-key"),
    ("NEW_RELIC_LICENSE_KEY", "newrelic-license", "license"), ("SENTRY_DSN", "sentry", "dsn"),
    ("DATABASE_PASSWORD", "orders-db-credentials", "password"), ("STRIPE_SECRET_KEY", "payments-stripe", "secret-key"),
    ("TWILIO_AUTH_TOKEN", "notifications-twilio", "auth-token"), ("SLACK_BOT_TOKEN", "ops-slack", "bot-token"),
    ("VAULT_TOKEN", "vault-agent-token", "token"), ("JIRA_API_TOKEN", "ops-jira", "api-token"),
    ("GRAFANA_API_KEY", "grafana-cloud", "api-key"), ("AWS_SECRET_ACCESS_KEY", "s3-exports", "secret-access-key"),
    ("OPENAI_API_KEY", "recommendations-llm", "api-key"), ("REDIS_PASSWORD", "cache-auth", "password"),
]
CI_SECRETS = ["NPM_TOKEN", "GITHUB_TOKEN", "SENTRY_AUTH_TOKEN", "DD_API_KEY", "DOCKERHUB_PASSWORD",
              "CODECOV_TOKEN", "SLACK_WEBHOOK_URL", "AWS_SECRET_ACCESS_KEY"]
EXTERNAL_HOSTS = ["api.stripe.com", "api.twilio.com", "api.sendgrid.com", "hooks.example-partner.net",
                  "api.openai.com", "sentry.io", "api.datadoghq.eu", "login.microsoftonline.com",
                  "sqs.eu-west-1.amazonaws.com", "storage.googleapis.com", "api.linear.app", "shop.atlassian.net"]


def _digest(rng) -> str:
    return "sha256:" + hexs(rng, 64)


def _image(rng, repo) -> str:
    tag = f"{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}"
    return rng.choice([f"{repo}:{tag}", f"{repo}@{_digest(rng)}", f"{repo}:{tag}@{_digest(rng)}"])


def _labels(app, indent, rng):
    pad = " " * indent
    return (f"{pad}app.kubernetes.io/name: {app}\n{pad}app.kubernetes.io/part-of: shop\n"
            f"{pad}app.kubernetes.io/version: \"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}\"\n")


def _env(rng, pairs, refs, indent):
    pad = " " * indent
    out = []
    for k, v in pairs:
        out.append(f"{pad}- name: {k}\n{pad}  value: \"{v}\"\n")
    for k, secret, key in refs:
        if rng.random() < 0.5:
            out.append(f"{pad}- name: {k}\n{pad}  valueFrom:\n{pad}    secretKeyRef:\n{pad}      name: {secret}\n{pad}      key: {key}\n")
        else:
            out.append(f"{pad}- name: {k}\n{pad}  valueFrom: {{secretKeyRef: {{name: {secret}, key: {key}}}}}\n")
    return "".join(out)


def _deployment(rng):
    svc = rng.choice(SERVICES)
    refs = rng.sample(SECRET_REFS, rng.randint(1, 4))
    pairs = [("LOG_LEVEL", rng.choice(["info", "debug", "warn"])), ("REGION", rng.choice(REGIONS)),
             ("HTTP_TIMEOUT_MS", str(rng.choice([800, 1500, 3000, 10000]))),
             ("UPSTREAM_URL", f"https://{rng.choice(EXTERNAL_HOSTS)}/v{rng.randint(1, 3)}")]
    role = f"arn:aws:iam::{_d(rng, 12)}:role/{svc}-{rng.choice(REGIONS)}"
    vault = ""
    if rng.random() < 0.4:
        vault = (f"    vault.hashicorp.com/agent-inject: \"true\"\n"
                 f"    vault.hashicorp.com/agent-inject-secret-db: \"secret/data/shop/{svc}-db\"\n"
                 f"    vault.hashicorp.com/agent-inject-token: \"{rng.choice(['true', 'false'])}\"\n"
                 f"    vault.hashicorp.com/role: \"{svc}\"\n")
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {svc}\n  namespace: shop\n  labels:\n"
            + _labels(svc, 4, rng)
            + f"  annotations:\n    deployment.kubernetes.io/revision: \"{rng.randint(1, 400)}\"\n"
            f"    eks.amazonaws.com/role-arn: {role}\n" + vault
            + f"spec:\n  replicas: {rng.randint(2, 24)}\n  revisionHistoryLimit: 10\n  selector:\n    matchLabels:\n"
            f"      app.kubernetes.io/name: {svc}\n  template:\n    metadata:\n      annotations:\n"
            f"        prometheus.io/scrape: \"true\"\n        prometheus.io/port: \"{rng.choice([8080, 9090, 9102])}\"\n"
            f"        ad.datadoghq.com/{svc}.logs: '[{{\"source\":\"java\",\"service\":\"{svc}\"}}]'\n"
            f"        checksum/config: {hexs(rng, 64)}\n"
            f"    spec:\n      serviceAccountName: {svc}\n      containers:\n        - name: {svc}\n"
            f"          image: {_image(rng, f'registry.example.com/shop/{svc}')}\n"
            f"          imagePullPolicy: IfNotPresent\n          ports:\n            - containerPort: 8080\n              name: http\n"
            f"          env:\n" + _env(rng, pairs, refs, 12)
            + f"          resources:\n            requests: {{cpu: {rng.choice(['100m', '250m', '500m'])}, memory: {rng.choice(['256Mi', '512Mi', '1Gi'])}}}\n"
            f"            limits: {{memory: {rng.choice(['512Mi', '1Gi', '2Gi'])}}}\n"
            f"          readinessProbe:\n            httpGet: {{path: /readyz, port: http}}\n            periodSeconds: {rng.choice([5, 10])}\n")


def _daemonset(rng):
    name, repo, pairs = rng.choice(AGENTS)
    refs = [r for r in SECRET_REFS if r[0] in AGENT_SECRETS.get(name, ())]
    return (f"apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: observability\n  labels:\n"
            + _labels(name, 4, rng)
            + f"spec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    spec:\n"
            f"      serviceAccountName: {name}\n      tolerations:\n        - operator: Exists\n      containers:\n"
            f"        - name: agent\n          image: {_image(rng, repo)}\n          env:\n"
            + _env(rng, pairs + [("NODE_NAME", "$(NODE_NAME)")], refs, 12)
            + f"          volumeMounts:\n            - {{name: varlog, mountPath: /var/log, readOnly: true}}\n"
            f"            - {{name: {name}-config, mountPath: /etc/{name}}}\n")


def _configmap(rng):
    svc = rng.choice(SERVICES)
    host = rng.choice(EXTERNAL_HOSTS)
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {svc}-config\n  namespace: shop\ndata:\n"
            f"  application.yaml: |\n    server:\n      port: 8080\n      shutdown: graceful\n"
            f"    http:\n      client:\n        base-url: https://{host}\n        connect-timeout: {rng.choice([500, 1000, 2000])}ms\n"
            f"        max-connections: {rng.choice([50, 100, 200])}\n"
            f"    auth:\n      token-ttl: {rng.choice(['15m', '1h', '12h'])}\n      password-min-length: {rng.choice([10, 12, 14])}\n"
            f"      session-secret-rotation: {rng.choice(['24h', '7d'])}\n      jwks-url: https://auth.example.com/.well-known/jwks.json\n"
            f"    features:\n      new-checkout: {rng.choice(['true', 'false'])}\n      recommendations-model: {rng.choice(['v3', 'v4-llm'])}\n"
            f"    integrations:\n      sentry:\n        environment: production\n        traces-sample-rate: {rng.choice(['0.05', '0.1', '0.2'])}\n"
            f"      datadog:\n        site: datadoghq.eu\n        service: {svc}\n      jira:\n        base-url: https://shop.atlassian.net\n"
            f"        project: {rng.choice(['OPS', 'SHOP', 'PAY'])}\n      vault:\n        address: https://vault.internal.example.com:8200\n"
            f"        auth-path: kubernetes\n        role: {svc}\n")


def _service_entry(rng):
    host = rng.choice(EXTERNAL_HOSTS)
    name = host.replace(".", "-")
    return (f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {name}\n  namespace: istio-egress\n"
            f"spec:\n  hosts:\n    - {host}\n  ports:\n    - number: 443\n      name: tls\n      protocol: TLS\n"
            f"  resolution: DNS\n  location: MESH_EXTERNAL\n")


def _helm_values(rng):
    svc = rng.choice(SERVICES)
    return (f"# values-{rng.choice(['prod', 'staging'])}.yaml for {svc}\nimage:\n  repository: registry.example.com/shop/{svc}\n"
            f"  tag: \"{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}\"\n  digest: {_digest(rng)}\n"
            f"postgresql:\n  enabled: false\n  auth:\n    existingSecret: {svc}-db-credentials\n"
            f"    secretKeys:\n      adminPasswordKey: postgres-password\n      userPasswordKey: password\n"
            f"    password: \"{{{{ .Values.global.postgresql.auth.password }}}}\"\n"
            f"redis:\n  auth:\n    enabled: true\n    existingSecret: cache-auth\n    existingSecretPasswordKey: password\n"
            f"ingress:\n  enabled: true\n  className: istio\n  hosts:\n    - host: {svc}.shop.example.com\n      paths: [{{path: /, pathType: Prefix}}]\n"
            f"  tls:\n    - secretName: tls-{svc}-shop-example-com\n      hosts: [{svc}.shop.example.com]\n"
            f"autoscaling:\n  minReplicas: {rng.randint(2, 4)}\n  maxReplicas: {rng.randint(8, 40)}\n  targetCPUUtilizationPercentage: {rng.choice([60, 70, 80])}\n")


def _workflow(rng):
    svc = rng.choice(SERVICES)
    secrets = rng.sample(CI_SECRETS, 3)
    env = "".join(f"      {s}: ${{{{ secrets.{s} }}}}\n" for s in secrets)
    return (f"name: release-{svc}\non:\n  push:\n    tags: ['v*']\npermissions:\n  contents: read\n  id-token: write\n"
            f"jobs:\n  release:\n    runs-on: ubuntu-24.04\n    env:\n" + env
            + f"    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/setup-node@v4\n        with:\n"
            f"          node-version: {rng.choice([18, 20, 22])}\n          registry-url: https://registry.npmjs.org\n"
            f"      - run: npm ci && npm test\n      - run: npm publish --provenance\n        env:\n"
            f"          NODE_AUTH_TOKEN: ${{{{ secrets.NPM_TOKEN }}}}\n"
            f"      - uses: docker/login-action@v3\n        with:\n          username: shopbot\n"
            f"          password: ${{{{ secrets.DOCKERHUB_PASSWORD }}}}\n"
            f"      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n"
            f"          role-to-assume: arn:aws:iam::{_d(rng, 12)}:role/release-{svc}\n          aws-region: {rng.choice(REGIONS)}\n")


def gen_manifest(rng):
    kind = rng.choices([_deployment, _daemonset, _configmap, _service_entry, _helm_values, _workflow],
                       [30, 12, 18, 12, 14, 14])[0]
    return kind(rng)


def build_manifests(rng, target):
    return "---\n".join(records(rng, gen_manifest, "text", "manifest", target, "---\n"))


# ---------------------------------------------------------------------------
# package-lock.json
# ---------------------------------------------------------------------------
# An npm lockfile (v3): package names (vendor SDKs among them), registry
# URLs, Subresource Integrity hashes (sha512-<88 base64>), licences,
# dependency ranges. The URLs carry no user info.

PACKAGES = ["express", "react", "react-dom", "lodash", "axios", "zod", "pino", "undici", "ws", "uuid", "dotenv",
            "jsonwebtoken", "passport", "passport-jwt", "bcryptjs", "helmet", "cors", "cookie-parser", "semver",
            "debug", "ms", "minimatch", "glob", "yaml", "commander", "chalk", "esbuild", "typescript", "vitest",
            "newrelic", "dd-trace", "stripe", "twilio", "openai", "node-vault", "jira-client", "prom-client",
            "@sentry/node", "@sentry/core", "@datadog/browser-rum", "@aws-sdk/client-s3", "@aws-sdk/client-sqs",
            "@aws-sdk/credential-providers", "@slack/web-api", "@linear/sdk", "@grafana/faro-web-sdk",
            "@octokit/rest", "@octokit/auth-token", "@opentelemetry/api", "@opentelemetry/sdk-node",
            "@azure/identity", "@azure/storage-blob", "@google-cloud/storage", "@babel/core", "@babel/parser",
            "@types/node", "@types/express", "@typescript-eslint/parser", "@vitejs/plugin-react", "@hapi/boom"]
LICENSES = ["MIT", "MIT", "MIT", "Apache-2.0", "ISC", "BSD-3-Clause", "BSD-2-Clause", "MIT OR Apache-2.0"]


def _version(rng) -> str:
    return f"{rng.randint(0, 24)}.{rng.randint(0, 40)}.{rng.randint(0, 30)}"


def gen_package(rng):
    name = rng.choice(PACKAGES)
    nested = rng.random() < 0.3
    path = f"node_modules/{rng.choice(PACKAGES)}/node_modules/{name}" if nested else f"node_modules/{name}"
    version = _version(rng)
    base = name.rsplit("/", 1)[-1]
    entry = {"version": version,
             "resolved": f"https://registry.npmjs.org/{name}/-/{base}-{version}.tgz",
             "integrity": "sha512-" + base64.b64encode(rng.getrandbits(512).to_bytes(64, "little")).decode(),
             "license": rng.choice(LICENSES)}
    if rng.random() < 0.15:
        entry["dev"] = True
    deps = rng.sample(PACKAGES, rng.choice([0, 0, 1, 2, 3, 5]))
    if deps:
        entry["dependencies"] = {d: rng.choice(["^", "~", ">=", ""]) + _version(rng) for d in deps}
    if rng.random() < 0.3:
        entry["engines"] = {"node": f">={rng.choice([14, 16, 18, 20])}"}
    if rng.random() < 0.1:
        entry["funding"] = {"url": f"https://github.com/sponsors/{base.strip('@')}"}
    return path, entry


def build_lockfile(rng, target):
    packages = {"": {"name": "shop-web", "version": "3.14.0", "license": "UNLICENSED",
                     "dependencies": {p: "^" + _version(rng) for p in rng.sample(PACKAGES, 24)}}}
    size = 0
    while size < target:
        (path, entry), text = keep(rng, gen_package, lambda r: json.dumps({r[0]: r[1]}, indent=2), "json", "package")
        if path in packages:
            continue
        packages[path] = entry
        size += len(text)
    lock = {"name": "shop-web", "version": "3.14.0", "lockfileVersion": 3, "requires": True, "packages": packages}
    return json.dumps(lock, indent=2) + "\n"


# ---------------------------------------------------------------------------
# README.md
# ---------------------------------------------------------------------------

README = """\
# DLP negative corpus

Realistic request bodies with **no** sensitive data. The DLP test scans every
file here except this README with the default detector catalogue and fails if
the number of findings is above the documented number (goal: 0).

Generated by `scripts/gen-dlp-corpus.py` (Python 3 standard library only,
fixed seed, byte-for-byte reproducible). Do not edit by hand: change the
script and run it again. `python3 scripts/gen-dlp-corpus.py --check` re-checks
the committed files without regenerating them.

| file | contents |
|------|----------|
| `orders.json` | paginated e-commerce API responses: UUIDs, order numbers `ORD-YYYY-MMDD-nnnnnn`, 13-19 digit external / transaction / refund ids, GTIN-13s, SKUs, prices, ISO and epoch-ms timestamps, postal codes, phone-like numbers in fictional ranges, carrier tracking numbers, card brand + last 4, ISO 11649 `RF` creditor references |
| `events.jsonl` | telemetry and log lines: HTTP access events (IPs, user agents, request/trace/span ids), deploys (git commits, image digests), cache keys (SHA-1), builds (SHA-256), Kafka offsets, 18-19 digit message ids, slow-query fingerprints (MD5), audit and payment events; about 15% of lines escape `/` as `\\/` like PHP's `json_encode` |
| `images.json` | base64 PNG (valid, uncompressed-deflate noise) and JPEG-like blobs, some as `data:` URIs |
| `prose.md` | English release notes, support tickets and product copy full of versions, years, prices, order numbers, long ids, hashes |
| `form.txt` | `application/x-www-form-urlencoded` bodies, one per line (cart, checkout, search, review, address, return forms) |
| `manifests.yaml` | Kubernetes Deployments, DaemonSets of monitoring agents, ConfigMaps, Istio ServiceEntries, Helm values and CI workflows: vendor names as values, credential names whose values are references (`secretKeyRef`, `${{ secrets.X }}`, Helm templates), image digests, AWS account ids in ARNs |
| `package-lock.json` | an npm lockfile (v3): registry URLs, `sha512-` integrity hashes, vendor SDK package names, dependency ranges |

## Clean by construction

Every record is checked before it is kept and regenerated if a check fails.
The checks implement the detectors' validators and are stricter than the
detectors should be:

- every digit span bounded by non-digits (letters count as boundaries) and
  made of whole groups separated by single spaces or dashes, so both plain
  runs and `dddd dddd dddd` / `ddd-dd-dddd` groupings are covered:
  - 12-19 digits that pass Luhn with any issuer prefix (anything starting
    2-6, plus 81, 82, 9792, and 1 with 15 digits);
  - 12 digits starting 2-9 that pass Verhoeff (Aadhaar);
  - 18 digits (or 17 and a final X) that pass the GB 11643 check digit;
  - 11 digits `1[3-9]...` plain or grouped 3-4-4, and with a leading 86;
  - any 3-2-4 grouping (SSN shape), whatever the value;
  - and no run of more than 19 digits at all;
- IBAN shapes (two letters, two digits, 11-30 alphanumerics, single spaces
  allowed) with a registry country that pass mod-97; UK NINO shapes;
- e-mail addresses, user info in URLs, `Authorization` values in the Basic scheme;
- provider key prefixes anywhere, even inside words or base64 (AWS, Alibaba,
  GCP, GitHub, GitLab, Slack, Stripe, OpenAI/Anthropic, npm, PyPI, SendGrid),
  the base64 of a JSON object start (JWT), PEM armour, GCP service account
  JSON, Azure connection strings and 88-character base64 keys, mixed-case
  40-character base64 tokens and any 40-character token near the words "aws"
  or "secret".

## Deliberately excluded

No real or valid card numbers, IBANs, national ids (SSN, Chinese resident
id, Aadhaar, NINO), Chinese mobile numbers, e-mail addresses (people appear as
`@handle`), credentials in URLs or headers, tokens, keys or JWTs.

## Deliberate near misses

Detectors must stay silent on these:

- long numeric ids (13-19 digits) that fail Luhn, many with card prefixes;
  GTIN-13s; 12-digit tracking numbers and phone digits that fail Verhoeff;
  18-digit ids that fail GB 11643; 13-digit epoch-millisecond timestamps that
  start with 17 (a `1[3-9]` run embedded in a longer number);
- Luhn-valid ids without an issuer prefix (for example 19-digit ids starting
  with 1, 7 or 9);
- `RF` creditor references, which are mod-97 valid but not IBANs;
- phone numbers in fictional ranges, in national format ((415) 555-01xx, 020 7946 0xxx, ...): E.164 numbers with a + are `phone_number` findings;
- 40-character lowercase hex (SHA-1, git commits), 64-character SHA-256;
- `sha512-` Subresource Integrity hashes (88 base64 characters ending `==`,
  the one such string allowed: the checks refuse any other);
- credential names assigned references, not values (`valueFrom:
  secretKeyRef`, `${{ secrets.NPM_TOKEN }}`, `{{ .Values.password }}`) and
  vendor names as values (`image: newrelic/infrastructure-k8s`);
- `risk-scoring-<hash>-<id>` host names (an "s", a "k" and a dash inside a
  word, then 20+ characters), "disk-usage", "task-runner" and "Basic plan" in
  ordinary text.
"""


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

FILES = [  # name, kind (for decoded views)
    ("orders.json", "json"), ("events.jsonl", "jsonl"), ("images.json", "json"),
    ("prose.md", "text"), ("form.txt", "form"), ("manifests.yaml", "text"), ("package-lock.json", "json"),
    ("README.md", "text"),
]


def _verhoeff_complete(d: str) -> str:
    return next(d + c for c in "0123456789" if verhoeff_ok(d + c))


# Positives the checks must catch (self-test of the checker, run before every
# generation; these strings live only in this script, never in the corpus).
SELF_TEST = [
    ("4111 1111 1111 1111", "credit_card"), ("x5555-5555-5555-4444x", "credit_card"),
    ("id 378282246310005.", "credit_card"), ("6011111111111117", "credit_card"),
    ("DE89 3704 0044 0532 0130 00", "iban"), ("GB82WEST12345698765432", "iban"),
    ("ref=fr1420041010050500013m02606;", "iban"),
    ("ssn 123-45-6789", "us_ssn"), ("11010519491231002X", "cn_resident_id"),
    ("call 13812345678 now", "cn_mobile"), ("+86 138 1234 5678", "cn_mobile"), ("8613812345678", "cn_mobile"),
    (f"uid {_verhoeff_complete('23412341234')}", "in_aadhaar"),
    (" ".join(_verhoeff_complete('98765432109')[i:i + 4] for i in (0, 4, 8)), "in_aadhaar"),
    ("AB123456C", "uk_nino"), ("QQ 12 34 56 D", "uk_nino"),
    ("write to ana.k+shop@mail.example.org", "email"),
    ("https://deploy:hunter2@git.example.com/x", "password_in_url"),
    ("Authorization: Basic dXNlcjpwYXNz", "basic_auth_header"), ("basic dXNlcjpwYXNz", "basic_auth_header"),
    ("AKIAZ7VQ2XK4MHL3RWTN", "aws_access_key_id"),
    ('"q8Hn2Wd/TmX5RkPa0LcVz3yBf7GsJ1uEoNiK4e9r"', "aws_secret_access_key"),
    ("aws_secret_access_key = 0123456789abcdef0123456789abcdef01234567", "aws_secret_access_key"),
    ("LTAI5tB2w9x8", "alibaba_access_key_id"), ("AIzaSyA-1234", "gcp_api_key"),
    ("ghp_abc", "github_token"), ("github_pat_11", "github_token"), ("glpat-xyz", "gitlab_token"),
    ("xoxb-123", "slack_token"), ("https://hooks.slack.com/services/T0/B0/x", "slack_webhook"),
    ("sk_live_abc", "stripe_secret_key"), ("rk_test_abc", "stripe_secret_key"),
    ('"sk-proj-abc"', "openai_api_key"), ("sk-ant-api03-x", "openai_api_key"),
    ("npm_" + "a1" * 18, "npm_token"), ("pypi-AgEIcHlwaS5vcmc", "pypi_token"),
    ("SG.abcdefgh.ijk", "sendgrid_api_key"), ("eyJhbGciOiJIUzI1NiJ9", "jwt"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "private_key"), ('"type": "service_account"', "gcp_service_account_key"),
    ("AccountKey=abc", "azure_storage_key"), ("k=" + "Ab1+" * 21 + "Ab==", "azure_storage_key"),
    ("n " + "1" * 20, "digit run longer than 19"),
]


def self_test() -> None:
    chk = Checker()
    for text, want in SELF_TEST:
        got = chk.violations(text)
        if want not in got:
            raise SystemExit(f"checker self-test failed: {text!r} should be {want}, got {got}")
    for text in ["4111 1111 1111 1112", "GB82WEST12345698765433", "RF05 7188 3004 12",
                 "1710498000123", "+1 (415) 555-0132", "2024-03-15", "AB1234567", "@jdoe", "pkg@1.2.3",
                 "https://example.com/a@b", "task-runner", "basic plan", "a" * 40,
                 '"integrity": "sha512-' + "Ab1+" * 21 + 'Ab=="']:
        got = chk.violations(text)
        if got and not (text == "https://example.com/a@b" and got == ["email"]):
            raise SystemExit(f"checker self-test failed: {text!r} should be clean, got {got}")


def final_check(out_dir: str) -> int:
    """Re-check whole files (records joined), report risks. Returns violations."""
    chk = Checker()
    bad = 0
    for name, kind in FILES:
        path = os.path.join(out_dir, name)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        views = [text]
        if kind == "form":
            views += [urllib.parse.unquote_plus(l) for l in text.splitlines()]
        elif kind == "jsonl":
            for l in text.splitlines():
                views += chk.views(l, "json")[1:]
        elif kind == "json":
            views += chk.views(text, "json")[1:]
        found: list[str] = []
        for i, v in enumerate(views):
            found += chk.violations(v, risk=(i == 0 and name != "README.md"))
        if found:
            bad += len(found)
            print(f"  {name}: VIOLATIONS {collections.Counter(found)}", file=sys.stderr)
    print(f"\nfinal whole-file check: {bad} violations, {chk.spans} digit spans of 9-19 digits checked")
    print("risk counters (not rejected; for the detector author):")
    for k, v in sorted(chk.risks.items()):
        print(f"  {v:7d}  {k}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="only re-check existing files")
    args = ap.parse_args()
    self_test()
    if args.check:
        return 1 if final_check(args.out) else 0

    rng = random.Random(SEED)
    os.makedirs(args.out, exist_ok=True)
    contents = {
        "orders.json": build_orders(random.Random(rng.getrandbits(64)), pages=9),
        "events.jsonl": build_events(random.Random(rng.getrandbits(64)), 700),
        "images.json": build_images(random.Random(rng.getrandbits(64)), 26),
        "prose.md": build_prose(random.Random(rng.getrandbits(64)), 170_000),
        "form.txt": build_form(random.Random(rng.getrandbits(64)), 100_000),
        "manifests.yaml": build_manifests(random.Random(rng.getrandbits(64)), 150_000),
        "package-lock.json": build_lockfile(random.Random(rng.getrandbits(64)), 250_000),
        "README.md": README,
    }
    if not CHK.clean(README, "text"):
        raise SystemExit("README.md itself fails the checks")
    total = 0
    print(f"writing {args.out}")
    for name, _ in FILES:
        data = contents[name].encode("utf-8")
        with open(os.path.join(args.out, name), "wb") as fh:
            fh.write(data)
        if name != "README.md":
            total += len(data)
        print(f"  {name:14s} {len(data):9,d} bytes")
    print(f"  {'total':14s} {total:9,d} bytes ({total / 1048576:.2f} MiB, README excluded)")
    print(f"\nrecords regenerated: {sum(REGEN.values())} ({', '.join(f'{k}: {v}' for k, v in sorted(REGEN.items()))})")
    print("rejections by reason (a record can fail several):")
    for k, v in sorted(CHK.reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {v:7d}  {k}")
    print(f"digit spans of 9-19 digits checked while generating: {CHK.spans:,d}")
    return 1 if final_check(args.out) else 0


if __name__ == "__main__":
    sys.exit(main())
