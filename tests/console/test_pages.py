"""Every console page, rendered by Streamlit's AppTest against a real engine, for each role; sign-in
errors; and the Deploy wizard's checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from tests.console.conftest import DEMO_APPS, RunningEngine

pytestmark = pytest.mark.usefixtures("engine_url")

APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")
OPERATOR_PAGES = {
    "pages/deploy.py": "Deploy an app",
    "pages/status.py": "Deployment status",
    "pages/apps.py": "Apps",
    "pages/tokens.py": "Tokens",
}
FINANCE_PAGES = {
    "pages/usage.py": "Usage",
    "pages/pricing.py": "Pricing & margins",
    "pages/cost_model.py": "Cost model",
}


def signed_in(token: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input[0].input(token)
    at.button[0].click().run()
    return at


def texts(at: AppTest | Block, kind: str) -> str:
    return "\n".join(str(element.value) for element in getattr(at, kind))


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("role", ["operator", "finance"])
def test_sign_in_shows_who_and_the_role(running_engine: RunningEngine, role: str) -> None:
    at = signed_in(getattr(running_engine, role))
    no_exception(at)
    assert f"({role})" in texts(at.sidebar, "markdown")
    assert at.title[0].value == ("Deploy an app" if role == "operator" else "Usage")


def test_wrong_token_says_so_without_a_stack_trace(running_engine: RunningEngine) -> None:
    at = signed_in("ldk_not-a-real-token")
    no_exception(at)
    assert "unknown engine token" in texts(at, "error")
    assert at.title[0].value == "Launchdeck console"


def test_expired_token_says_it_expired(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.expired)
    no_exception(at)
    assert "expired" in texts(at, "error")


def test_platform_token_is_not_for_the_console(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.platform)
    assert "use an operator or finance token" in texts(at, "error")


def test_unreachable_engine_is_a_message(
    running_engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.servers.asgi import free_port

    monkeypatch.setenv("LAUNCHDECK_ENGINE_URL", f"http://127.0.0.1:{free_port()}")
    at = signed_in(running_engine.operator)
    no_exception(at)
    assert "did not answer" in texts(at, "error")


@pytest.mark.parametrize(
    ("role", "page", "title"),
    [("operator", p, t) for p, t in {**OPERATOR_PAGES, **FINANCE_PAGES}.items()]
    + [("finance", p, t) for p, t in FINANCE_PAGES.items()],
)
def test_page_renders_with_content(running_engine: RunningEngine, role: str, page: str, title: str) -> None:
    at = signed_in(getattr(running_engine, role))
    at.switch_page(page).run()
    no_exception(at)
    assert not at.error, texts(at, "error")
    assert at.title[0].value == title
    assert f"{DEMO_APPS} of the" in texts(at, "info"), "demo data must be labelled on every page"


def test_apps_page_lists_the_fleet_with_costs(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.operator)
    at.switch_page("pages/apps.py").run()
    table = at.dataframe[0].value
    assert len(table) == DEMO_APPS
    assert table["cost_usd"].notna().sum() > DEMO_APPS / 2  # apps that used something this month have a cost
    assert table["last_deployed_at"].notna().all()
    at.multiselect[0].select("business").run()
    filtered = at.dataframe[0].value
    assert 0 < len(filtered) < DEMO_APPS and set(filtered["tier"]) == {"business"}


def test_usage_page_draws_charts_for_the_fleet_and_one_app(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.finance)
    at.switch_page("pages/usage.py").run()
    assert len(at.get("vega_lite_chart")) == 3  # the three default metrics, per provider
    app = running_engine.engine.store.scalar(
        "SELECT name FROM deployed_apps WHERE status = 'active' ORDER BY name"
    )
    at.selectbox[0].select(app).run()
    no_exception(at)
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 4
    tier = running_engine.engine.store.scalar("SELECT tier FROM deployed_apps WHERE name = ?", [app])
    if tier != "enterprise":  # enterprise has no quotas to draw
        assert any(f"{tier} quota" in chart.proto.spec for chart in charts)


def test_pricing_page_shows_tiers_and_the_railway_baseline(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.finance)
    at.switch_page("pages/pricing.py").run()
    labels = {m.label: m.value for m in at.metric}
    assert labels["Railway, reserved size"].startswith("$") and labels["Railway, measured use"].startswith(
        "$"
    )
    tiers = set(at.dataframe[0].value["tier"])
    assert {"starter", "pro", "business"} <= tiers
    sheets = at.dataframe[-1].value
    assert "Turso" in set(sheets["display_name"]) and sheets["in_force"].any()


def test_cost_model_recomputes_when_a_slider_moves(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.finance)
    at.switch_page("pages/cost_model.py").run()
    before = at.dataframe[0].value.set_index("architecture")["total_usd"]
    assert "railway" in before.index and before["railway"] > before["turso+cloudflare"]
    at.slider[0].set_value(5_000).run()
    after = at.dataframe[0].value.set_index("architecture")["total_usd"]
    assert after["railway"] > before["railway"]


def test_finance_cannot_open_operator_pages(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.finance)
    for page in OPERATOR_PAGES:  # the navigation does not even register them for finance
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


# -- the Deploy wizard's checks ----------------------------------------------------------------------


def wizard(running_engine: RunningEngine) -> AppTest:
    at = signed_in(running_engine.operator)
    at.switch_page("pages/deploy.py").run()
    return at


def fill_step_one(at: AppTest, **answers: Any) -> AppTest:
    for key, value in answers.items():
        widget = at.selectbox(key=key) if key == "wiz-tier" else at.text_input(key=key)
        widget.set_value(value)
    return at.button(key="wiz-next-1").click().run()


def test_wizard_refuses_an_owner_over_the_tier_app_limit(running_engine: RunningEngine) -> None:
    full = running_engine.engine.store.fetchone(
        "SELECT s.user_id, s.tier FROM user_subscriptions s JOIN deployed_apps a ON a.user_id = s.user_id"
        " WHERE s.max_deployed_apps >= 0 GROUP BY ALL HAVING count(*) >= any_value(s.max_deployed_apps) LIMIT 1"
    )
    assert full is not None
    at = fill_step_one(wizard(running_engine), **{"wiz-name": "one-more-app", "wiz-owner": full["user_id"],
                                                  "wiz-tier": full["tier"]})  # fmt: skip
    no_exception(at)
    assert f"Over the {full['tier']} tier's limit" in texts(at, "error")
    assert at.button(key="wiz-next-1")  # still on step 1


def test_wizard_refuses_a_database_the_tier_does_not_include(running_engine: RunningEngine) -> None:
    at = wizard(running_engine)
    at.radio(key="wiz-database").set_value("neon")
    at = fill_step_one(at, **{"wiz-name": "pg-app", "wiz-tier": "starter"})
    assert "does not include Neon PostgreSQL; the business tier allows it" in texts(at, "error")


def to_step_two(running_engine: RunningEngine) -> AppTest:
    at = fill_step_one(wizard(running_engine), **{"wiz-name": "wizard-app", "wiz-owner": "wizard-owner",
                                                  "wiz-tier": "business"})  # fmt: skip
    assert not at.error, texts(at, "error")
    return at


def test_wizard_rejects_a_bad_domain(running_engine: RunningEngine) -> None:
    at = to_step_two(running_engine)
    at.radio(key="wiz-domain-mode").set_value("custom").run()
    at.text_input(key="wiz-domain").input("shop..example.com").run()
    assert "is not a valid domain name" in texts(at, "error")
    at.button(key="wiz-next-2").click().run()
    assert at.button(key="wiz-next-2"), "a bad domain must keep the wizard on step 2"
    at.text_input(key="wiz-domain").input("shop.example.com").run()
    assert "shop.example.com is a valid domain name" in texts(at, "success")


def test_wizard_rejects_a_duplicate_env_var_and_masks_values(running_engine: RunningEngine) -> None:
    at = to_step_two(running_engine)
    for _ in range(2):
        at.button(key="wiz-add-env").click().run()
    for index in range(2):
        at.text_input(key=f"env-name-{index}").input("STRIPE_SECRET_KEY")
        at.text_input(key=f"env-value-{index}").input(f"sk_test_{index}")
    at.run()
    assert at.text_input(key="env-value-0").proto.type == at.text_input(key="env-value-0").proto.PASSWORD
    at.button(key="wiz-next-2").click().run()
    assert "STRIPE_SECRET_KEY is set twice" in texts(at, "error")
    at.toggle(key="wiz-show-values").set_value(True).run()
    assert at.text_input(key="env-value-0").proto.type == at.text_input(key="env-value-0").proto.DEFAULT


def test_wizard_review_shows_the_estimated_monthly_cost_and_limits(running_engine: RunningEngine) -> None:
    at = to_step_two(running_engine)
    at.button(key="wiz-next-2").click().run()
    no_exception(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Estimated monthly cost to Launchdeck"].startswith("$")
    assert "business tier limits" in texts(at, "markdown")


def test_wizard_shows_the_engines_refusal_of_a_deploy(running_engine: RunningEngine, tmp_path: Path) -> None:
    at = fill_step_one(wizard(running_engine), **{"wiz-app-dir": str(tmp_path), "wiz-name": "not-an-app",
                                                  "wiz-owner": "wizard-owner", "wiz-tier": "business"})  # fmt: skip
    at.button(key="wiz-next-2").click().run()
    at.button(key="wiz-deploy").click().run()
    no_exception(at)
    assert f"source_path: {tmp_path} has no package.json" in texts(at, "error")
    assert at.title[0].value == "Deploy an app"


def test_destroy_needs_the_app_name_typed(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.operator)
    at.switch_page("pages/apps.py").run()
    name = str(at.dataframe[0].value["name"].iloc[0])
    at.selectbox[0].select(name).run()
    no_exception(at)
    destroy = next(b for b in at.button if b.label == "Destroy")
    suspend = next(b for b in at.button if b.label == "Suspend")
    assert destroy.disabled and suspend.disabled
    at.text_input(key="confirm-destroy").input(name[:-1]).run()
    assert next(b for b in at.button if b.label == "Destroy").disabled
    at.text_input(key="confirm-destroy").input(name).run()
    assert not next(b for b in at.button if b.label == "Destroy").disabled
    at.checkbox(key="confirm-suspend").check().run()
    assert not next(b for b in at.button if b.label == "Suspend").disabled
    assert "No deployment history" in texts(at, "caption")  # demo apps have none: they were never deployed


def test_tokens_page_issues_a_token_once_and_revokes_it(running_engine: RunningEngine) -> None:
    at = signed_in(running_engine.operator)
    at.switch_page("pages/tokens.py").run()
    at.text_input(key="token-name").input("page-made")
    at.button[0].click().run()  # the form's Issue button
    no_exception(at)
    token = at.code[0].value
    assert token.startswith("ldk_") and "Copy it now" in texts(at, "success")
    from engine.auth import authenticate

    assert authenticate(running_engine.engine.store, token).name == "page-made"
    choice = next(o for o in at.selectbox(key="token-revoke-choice").options if o.startswith("page-made"))
    at.selectbox(key="token-revoke-choice").select(choice).run()
    at.button(key="token-revoke").click().run()
    no_exception(at)
    revoked = running_engine.engine.store.scalar("SELECT revoked_at FROM api_tokens WHERE name = 'page-made'")
    assert revoked is not None


def test_wizard_refuses_a_variable_name_the_engine_refuses(running_engine: RunningEngine) -> None:
    at = to_step_two(running_engine)
    at.button(key="wiz-add-env").click().run()
    at.text_input(key="env-name-0").input("my_var")
    at.text_input(key="env-value-0").input("x")
    at.run()
    at.button(key="wiz-next-2").click().run()
    assert "is not a valid variable name" in texts(at, "error")  # the API answers 422 for the same name
