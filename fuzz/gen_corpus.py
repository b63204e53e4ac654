#!/usr/bin/env python3
"""Writes the generated seeds of url_fuzzer into fuzz/corpus/url/.

The cases of issue 11, then a few hundred URLs generated from every form
poolscope accepts (URI user info, query parameters, SOCI's keyword=value
text, SQLite) with passwords holding what each grammar treats specially, and
their mistyped kin (one slash, no colon, leading space, unknown scheme, bad
port, typos in keywords, NUL bytes, unclosed quotes). Deterministic: the same
files every run, named by the SHA-1 of their content as libFuzzer names them.
The rest of the committed corpus is what fuzzing found (the inputs of every
violation fixed, and a set-cover merge of a run's findings):

    python3 fuzz/gen_corpus.py            # (re)writes the generated seeds
    build-fuzz/fuzz/url_fuzzer -set_cover_merge=1 fuzz/corpus/url <found-dir>
"""

import hashlib
import pathlib
import random
import urllib.parse

ISSUE_CASES = [
    b"postgresql://db:5432/app?user=app@myserver&password=Zq9Secret",
    b"postgresql:/app:Zq9Secret@db:5432/app",
    b"postgres//app:Zq9Secret@db:5432/app",
    b" postgresql://app:Zq9Secret@db:5432/app",
    b"postgresql://host=h pw:Zq9Secret@db",
    b"postgresql://user=x:Zq9Secret@db/app",
    b"postgresql://host=db password=Zq9\\ Secret",
    b'postgresql://host=db password="Zq9 Secret" dbname=app',
    b"postgresql://app:Zq9@Secret/x@db/app",
    b"postgresql://app:Zq9@Secret?x@db/app",
    b"postgresql://app:Zq9@Secret#x@db/app",
    b"postgresql://host=127.0.0.1 port=5432 user=app dbname=app password=Zq9Secret\\",
    b"postgresql://app:Zq9Secret@db/app\x00?sslmode=verify-full",
    b"postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write",
    b"postgresql://host=db Password=Zq9Secret",
    b"postgresql://app@db/app?PASSWORD=Zq9Secret",
]

PASSWORDS = [
    "Zq9Secret", "Zq9 Secret", "Zq9'Secret", "Zq9\\Secret", "Zq9Secret\\", "Zq9@Secret",
    "Zq9:Secret", "Zq9/Secret", "Zq9?Secret", "Zq9#Secret", "Zq9&Secret", "Zq9=Secret",
    "Zq9%Secret", 'Zq9"Secret', "Zq9,Secret", "*Zq9*", "Zq9\tSecret", "p@ss:w/rd?#",
]
USERS = ["app", "app@myserver", "user=x", "a:b", ""]
HOSTS = ["db", "127.0.0.1", "[::1]", "db1:5432,db2:5433", "%2Ftmp"]
SCHEMES = ["postgresql://", "postgres://", "postgresql:/", "postgres//", " postgresql://",
           "PostgreSQL://", "mysql://", "postgresq://", "redis://", ""]
KEYWORDS = ["host", "port", "dbname", "user", "sslmode", "connect_timeout", "application_name",
            "target_session_attrs", "sslpassword", "passwrd", "Password", "pasword"]


def libpq_quote(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_escape(value):
    return "".join("\\" + c if c in " \t'\\" else c for c in value)


def enc(value):
    return urllib.parse.quote(value, safe="")


def generated(rng):
    out = []
    for _ in range(110):  # URIs
        user, pw, host = rng.choice(USERS), rng.choice(PASSWORDS), rng.choice(HOSTS)
        scheme = rng.choice(SCHEMES[:2]) if rng.random() < 0.75 else rng.choice(SCHEMES)
        raw = rng.random() < 0.4
        userinfo = (user if raw else enc(user)) + ":" + (pw if raw else enc(pw)) + "@"
        query = rng.choice(["", "?sslmode=disable", "?sslmode=verify", "?application_name=x&ssl=true",
                            "?port=5432", "?" + rng.choice(KEYWORDS) + "=1"])
        port = rng.choice(["", ":5432", ":port", ":99999", ":0"])
        if "," in host:
            port = ""
        out.append(scheme + userinfo + host + port + "/app" + query)
    for _ in range(70):  # the password in the query
        pw = rng.choice(PASSWORDS)
        value = enc(pw) if rng.random() < 0.6 else pw
        key = rng.choice(["password", "password", "pass%77ord", "sslpassword", "PASSWORD"])
        out.append(rng.choice(SCHEMES[:2]) + rng.choice(HOSTS) + "/app?user=" +
                   rng.choice(USERS) + "&" + key + "=" + value + rng.choice(["", "&sslmode=require"]))
    for _ in range(110):  # SOCI's form: keyword=value text
        pw = rng.choice(PASSWORDS)
        written = rng.choice([libpq_quote(pw), libpq_escape(pw), pw, '"' + pw + '"',
                              libpq_escape(pw) + "\\", "'" + pw])
        pairs = ["host=db", "password=" + written, "user=" + rng.choice(USERS or ["app"]),
                 rng.choice(KEYWORDS) + "=" + rng.choice(["1", "x", "'a b'", ""])]
        rng.shuffle(pairs)
        sep = rng.choice([" ", "\t", "\n", "  ", " = "])
        text = sep.join(pairs) if sep != " = " else " ".join(p.replace("=", " = ", 1) for p in pairs)
        out.append(rng.choice(SCHEMES[:2] + SCHEMES[2:5]) + text)
    for _ in range(40):  # SQLite
        path = rng.choice(["app.db", "/tmp/a b.db", ":memory:", '/tmp/"q.db', "rel/x.db", ""])
        out.append(rng.choice([
            "sqlite3://db=" + (('"' + path + '"') if " " in path else path) +
            rng.choice(["", " timeout=5", "\tsynchronous=off", " readonly=false", " vfs=unix",
                        " tmeout=1", " timeout=\"5", " password=Zq9Secret"]),
            "sqlite://" + urllib.parse.quote(path, safe="/:") +
            rng.choice(["", "?timeout=5", "?bogus=1", "?timeout=soon", "#x"]),
        ]))
    return [s.encode() for s in out]


def main():
    rng = random.Random(11)
    corpus = pathlib.Path(__file__).resolve().parent / "corpus" / "url"
    corpus.mkdir(parents=True, exist_ok=True)
    inputs = ISSUE_CASES + generated(rng)
    for data in inputs:
        (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    print(f"{len(set(inputs))} inputs in {corpus}")


if __name__ == "__main__":
    main()
