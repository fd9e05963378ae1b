"""The admin page: off without a token, locked behind it, shows sessions, runs and memory, stops runs."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dlplay.ui import server
from helpers import click, wait_for

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TOKEN = "correct horse battery staple"


def open_page(page, lang="en"):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def sign_in(at, token):
    at.text_input(key="admin_token_input").input(token)
    click(at, "admin_sign_in")


def metrics(at):
    return {m.label: m.value for m in at.metric}



def test_admin_is_not_in_the_navigation_without_a_token(monkeypatch):
    """As the README says: the Admin page appears only with DLPLAY_ADMIN_TOKEN set."""
    from dlplay.ui.nav import available_pages

    def urls():
        return [url for _, url, *_ in available_pages()]

    monkeypatch.delenv("DLPLAY_ADMIN_TOKEN", raising=False)
    assert "admin" not in urls()
    assert "home" in urls()
    monkeypatch.setenv("DLPLAY_ADMIN_TOKEN", "   ")
    assert "admin" not in urls()
    monkeypatch.setenv("DLPLAY_ADMIN_TOKEN", TOKEN)
    assert urls()[-1] == "admin"


def test_admin_is_gone_when_the_token_goes_away(monkeypatch):
    monkeypatch.setenv("DLPLAY_ADMIN_TOKEN", TOKEN)
    at = open_page("views/admin.py")
    assert at.title[0].value == "Admin"
    assert at.text_input
    monkeypatch.setenv("DLPLAY_ADMIN_TOKEN", "   ")
    at.run()  # the page left the navigation: Home shows, nothing of Admin
    assert at.title[0].value != "Admin"
    assert not at.text_input
    assert not at.metric


def test_a_wrong_token_shows_nothing(monkeypatch):
    monkeypatch.setenv("DLPLAY_ADMIN_TOKEN", TOKEN)
    at = open_page("views/admin.py")
    sign_in(at, "correct horse")
    assert [e.value for e in at.error] == ["That token is not right."]
    assert not at.metric
    assert not at.dataframe
    assert at.session_state["admin_token_input"] == ""


def test_admin_sees_runs_and_sessions_and_stops_a_run(monkeypatch):
    monkeypatch.setenv("DLPLAY_ADMIN_TOKEN", TOKEN)
    learner = open_page("views/train.py")
    learner.sidebar.number_input(key="tw_epochs").set_value(50)
    learner.run()
    click(learner, "train_start")
    run = learner.session_state["train_session"]
    assert wait_for(lambda: run.status in ("running", "queued"))
    run_id = server.registry().run_id(run)

    admin = open_page("views/admin.py")
    sign_in(admin, TOKEN)
    assert not admin.error
    shown = metrics(admin)
    assert int(shown["Browser sessions"]) >= 2
    assert int(shown["Running"]) + int(shown["Queued"]) >= 1
    assert int(shown["Runs in memory"]) >= 1
    assert shown["Run slots"] == str(server.slot_pool().limit)
    assert int(shown["Server memory (MB)"].replace(",", "")) > 50
    runs = admin.dataframe[0].value
    row = runs[runs["Run"] == run_id].iloc[0]
    assert row["Model"] == "784 → Dense 128 relu → 10"
    assert row["Parameters"] == 101_770
    assert row["Session"] == learner.session_state["_dlplay_browser"].id
    sessions = admin.dataframe[1].value
    assert learner.session_state["_dlplay_browser"].id in set(sessions["Session"])

    click(admin, f"admin_stop_{run_id}")
    assert run.join(10)
    assert run.status == "stopped"
    admin.run()
    runs = admin.dataframe[0].value
    assert runs[runs["Run"] == run_id].iloc[0]["Status"] == "stopped"
    assert f"admin_stop_{run_id}" not in [b.key for b in admin.button]


def test_admin_changes_the_run_limit_and_signs_out(monkeypatch):
    monkeypatch.setenv("DLPLAY_ADMIN_TOKEN", TOKEN)
    pool = server.slot_pool()
    saved = pool.limit
    try:
        admin = open_page("views/admin.py", lang="zh")
        sign_in(admin, TOKEN)
        assert admin.title[0].value == "管理"
        assert "训练名额" in metrics(admin)
        admin.number_input(key="admin_limit").set_value(saved + 2)
        admin.run()
        assert pool.limit == saved + 2
        click(admin, "admin_sign_out")
        assert not admin.metric
        assert admin.text_input(key="admin_token_input")
    finally:
        pool.set_limit(saved)
