from __future__ import annotations

from pathlib import Path

import pytest

from sippa.app.accounts import (
    FAILURE_WINDOW,
    GLOBAL_MAX_FAILURES,
    LOCKOUT,
    MAX_CLIENTS,
    MAX_FAILURES,
    Accounts,
    LockedOut,
    PasswordRejected,
    check_password_policy,
    hash_password,
    verify_password,
)
from sippa.app.store import ConfigStore

GOOD = "Corr3ct-horse"


def test_first_run_needs_the_one_time_token(tmp_path: Path) -> None:
    accounts = Accounts(ConfigStore(tmp_path / "c.db"))
    assert accounts.needs_setup
    token = accounts.setup_token()
    assert token and accounts.setup_token() == token
    with pytest.raises(PermissionError, match="wrong setup token"):
        accounts.complete_setup("guess", GOOD)
    assert accounts.needs_setup
    accounts.complete_setup(token, GOOD)
    assert not accounts.needs_setup
    assert accounts.setup_token() is None
    with pytest.raises(PermissionError, match="already set"):
        accounts.complete_setup(token, GOOD)
    assert accounts.login("admin", GOOD, now=0)


def test_no_login_works_before_a_password_is_set() -> None:
    accounts = Accounts(ConfigStore())
    assert not accounts.login("admin", "", now=0)
    assert not accounts.login("user", "", now=0)
    assert not accounts.login("root", GOOD, now=0)


def test_passwords_are_stored_as_scrypt_hashes(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c.db")
    Accounts(store).set_password("user", GOOD)
    stored = str(store.get("user_password"))
    assert stored.startswith("scrypt$") and GOOD not in stored
    assert (tmp_path / "c.db").read_bytes().find(GOOD.encode()) == -1
    assert verify_password(GOOD, stored)
    assert not verify_password(GOOD + "x", stored)
    assert not verify_password(GOOD, "plain-text")
    assert hash_password(GOOD) != hash_password(GOOD)  # salted


@pytest.mark.parametrize(
    ("password", "problem"),
    [("Sh0rt!", "8 to 127"), ("x" * 128, "8 to 127"), ("alllowercase", "three of"),
     ("lowerUPPER", "three of")],
)
def test_password_policy(password: str, problem: str) -> None:
    with pytest.raises(PasswordRejected, match=problem):
        check_password_policy(password)
    check_password_policy("lowerUPPER1")
    check_password_policy("lower-123")


def test_lockout_after_repeated_failures_and_reset_after_it() -> None:
    accounts = Accounts(ConfigStore())
    accounts.set_password("admin", GOOD)
    for i in range(MAX_FAILURES):
        assert not accounts.login("admin", "wrong", now=float(i))
    with pytest.raises(LockedOut) as info:
        accounts.login("admin", GOOD, now=10.0)  # even the right password waits
    assert 0 < info.value.retry_after <= LOCKOUT
    assert accounts.login("user", "x", now=10.0) is False  # the other login is not locked
    assert accounts.login("admin", GOOD, now=MAX_FAILURES + LOCKOUT + 1)


def test_a_client_guessing_locks_out_only_itself() -> None:
    accounts = Accounts(ConfigStore())
    accounts.set_password("admin", GOOD)
    for i in range(MAX_FAILURES):
        assert not accounts.login("admin", "wrong", now=float(i), client="203.0.113.9")
    with pytest.raises(LockedOut):
        accounts.login("admin", GOOD, now=10.0, client="203.0.113.9")
    # the real admin, elsewhere, is not locked out by someone else's guesses
    assert accounts.login("admin", GOOD, now=10.0, client="192.0.2.1")


def test_guessing_from_many_addresses_trips_a_global_limit_that_spares_known_clients() -> None:
    accounts = Accounts(ConfigStore())
    accounts.set_password("admin", GOOD)
    assert accounts.login("admin", GOOD, now=0.0, client="192.0.2.1")  # the admin's desk
    for i in range(GLOBAL_MAX_FAILURES):
        addr = f"198.51.100.{i % 250}" if i < 250 else f"198.51.101.{i % 250}"
        assert not accounts.login("admin", "guess", now=1.0 + i / 100, client=addr)
    # a new address is refused even with the right password while the failures are recent
    with pytest.raises(LockedOut) as info:
        accounts.login("admin", GOOD, now=2.0, client="203.0.113.50")
    assert 0 < info.value.retry_after <= FAILURE_WINDOW
    # a client that logged in before still can; the other login is unaffected
    assert accounts.login("admin", GOOD, now=2.0, client="192.0.2.1")
    assert not accounts.login("user", "x", now=2.0, client="203.0.113.50")
    # once the failures age out, anyone may try again
    assert accounts.login("admin", GOOD, now=2.0 + FAILURE_WINDOW, client="203.0.113.50")


def test_parallel_guesses_get_no_more_tries_than_sequential_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from sippa.app import accounts as accounts_module

    accounts = Accounts(ConfigStore())
    accounts.set_password("admin", GOOD)
    checked = []
    lock = threading.Lock()

    def slow_verify(password: str, stored: str) -> bool:  # scrypt, only slower
        with lock:
            checked.append(password)
        time.sleep(0.2)
        return False

    monkeypatch.setattr(accounts_module, "verify_password", slow_verify)

    def attempt(i: int) -> str:
        try:
            return str(accounts.login("admin", f"guess{i}", now=1.0, client="198.51.100.7"))
        except LockedOut:
            return "locked"

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(attempt, range(12)))
    assert len(checked) == MAX_FAILURES  # the others were refused without a check
    assert results.count("locked") == 12 - MAX_FAILURES


def test_an_ipv6_client_counts_by_its_64() -> None:
    accounts = Accounts(ConfigStore())  # no password: every try fails without scrypt
    for i in range(MAX_FAILURES):
        assert not accounts.login("admin", "x", now=float(i), client=f"2001:db8:5:6::{i + 1}")
    with pytest.raises(LockedOut):
        accounts.login("admin", "x", now=10.0, client="2001:db8:5:6:ffff::1")
    assert not accounts.login("admin", "x", now=10.0, client="2001:db8:5:7::1")


def test_lockout_state_stays_bounded() -> None:
    accounts = Accounts(ConfigStore())  # no password set: every try fails without scrypt
    for i in range(MAX_CLIENTS + 100):
        addr = f"10.0.{i >> 8}.{i & 255}"
        assert not accounts.login("admin", "wrong", now=i * 10.0, client=addr)
    assert len(accounts._failures) == MAX_CLIENTS


def test_api_tokens_are_shown_once_and_stored_hashed(tmp_path: Path) -> None:
    accounts = Accounts(ConfigStore(tmp_path / "c.db"))
    token = accounts.create_token("admin", "ci script")
    assert accounts.check_token(token) == "admin"
    assert accounts.check_token(token + "x") is None
    assert accounts.check_token("sippa_nope_nope") is None
    assert accounts.check_token("garbage") is None
    assert token.encode() not in (tmp_path / "c.db").read_bytes()
    [listed] = accounts.list_tokens()
    assert listed["label"] == "ci script" and listed["role"] == "admin"
    assert accounts.revoke_token(listed["id"])
    assert accounts.check_token(token) is None
