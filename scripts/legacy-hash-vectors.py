#!/usr/bin/env python3
"""Writes crates/api/tests/fixtures/legacy-hashes.jsonl: password hashes made by the libraries
that other systems use (Django, passlib, Werkzeug, the `bcrypt` package, argon2-cffi), for the
tests of `jwt-auth user import` and of the first login that upgrades them.

Each line: {"family", "made_by", "password", "hash"}. Costs are the lowest each library allows
(or close), so that the tests stay fast; the format is what matters, and the production costs
differ in numbers only.

    python3 -m venv /tmp/hash-venv
    /tmp/hash-venv/bin/pip install 'django==5.2.*' 'passlib==1.7.4' 'werkzeug==3.1.*' \
        'bcrypt==5.0.*' 'argon2-cffi==25.1.*'
    /tmp/hash-venv/bin/python scripts/legacy-hash-vectors.py

The salts are random: a new run writes other hashes of the same passwords.
"""

import json
import pathlib

import bcrypt
import django
from django.conf import settings

settings.configure(PASSWORD_HASHERS=[])
django.setup()

from django.contrib.auth import hashers as dj  # noqa: E402
from passlib import hash as passlib  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

PASSWORDS = ["correct horse battery staple", "pässwörd with ünïcode ✓"]


class DjangoPbkdf2(dj.PBKDF2PasswordHasher):
    iterations = 1_000


class DjangoBcryptSha256(dj.BCryptSHA256PasswordHasher):
    rounds = 4


class DjangoBcrypt(dj.BCryptPasswordHasher):
    rounds = 4


class DjangoArgon2(dj.Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 1


def django_hash(hasher, password):
    return hasher.encode(password, hasher.salt())


def bcrypt_hash(password, prefix):
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4, prefix=prefix)).decode()


MAKERS = [
    ("bcrypt", "bcrypt 5 ($2b$)", lambda p: bcrypt_hash(p, b"2b")),
    ("bcrypt", "bcrypt 5 ($2a$)", lambda p: bcrypt_hash(p, b"2a")),
    # PHP's prefix for the same algorithm as $2b$: the bcrypt package does not write it.
    ("bcrypt", "bcrypt 5 ($2b$ relabelled $2y$)", lambda p: "$2y$" + bcrypt_hash(p, b"2b")[4:]),
    ("argon2id", "argon2-cffi", lambda p: passlib.argon2.using(type="ID", memory_cost=1024, rounds=1).hash(p)),
    ("argon2i", "argon2-cffi", lambda p: passlib.argon2.using(type="I", memory_cost=1024, rounds=2).hash(p)),
    ("scrypt", "passlib", lambda p: passlib.scrypt.using(rounds=10).hash(p)),
    ("pbkdf2-sha256", "passlib", lambda p: passlib.pbkdf2_sha256.using(rounds=1_000).hash(p)),
    ("pbkdf2-sha512", "passlib", lambda p: passlib.pbkdf2_sha512.using(rounds=1_000).hash(p)),
    ("django-pbkdf2_sha256", "Django 5.2", lambda p: django_hash(DjangoPbkdf2(), p)),
    ("django-bcrypt_sha256", "Django 5.2", lambda p: django_hash(DjangoBcryptSha256(), p)),
    ("django-bcrypt", "Django 5.2", lambda p: django_hash(DjangoBcrypt(), p)),
    ("django-argon2", "Django 5.2", lambda p: django_hash(DjangoArgon2(), p)),
    ("werkzeug-pbkdf2", "Werkzeug 3.1", lambda p: generate_password_hash(p, "pbkdf2:sha256:1000")),
    ("werkzeug-scrypt", "Werkzeug 3.1", lambda p: generate_password_hash(p, "scrypt:1024:8:1")),
]


def main():
    out = pathlib.Path(__file__).resolve().parent.parent / "crates/api/tests/fixtures/legacy-hashes.jsonl"
    lines = []
    for family, made_by, make in MAKERS:
        for password in PASSWORDS:
            hashed = make(password)
            lines.append(json.dumps({"family": family, "made_by": made_by, "password": password, "hash": hashed}, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} hashes to {out}")


if __name__ == "__main__":
    main()
