"""A credit-pack shop in Flask, with billfold doing the billing through ``billfold.client``.

Sign in, see your credits in the header, buy a pack (Stripe Checkout, created by billfold), come
back to a success page that shows the new balance, spend credits on a report (refused with a clear
message when the balance is short), and read your own history.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Flask,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash, generate_password_hash

from billfold.client import Client
from billfold.domain import errors

REPORT_COST = 100  # credits

# A real application has a users table; two demo users keep the example about billing.
USERS = {
    "ada": generate_password_hash("lovelace"),
    "alan": generate_password_hash("turing"),
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY", "change-me"),
        BILLFOLD_URL=os.environ.get("BILLFOLD_URL", "http://127.0.0.1:8000"),
        BILLFOLD_API_KEY=os.environ.get("BILLFOLD_API_KEY", ""),
    )
    app.config.update(config or {})

    def billfold() -> Client:
        """One client per request (with the server key: billfold trusts this backend)."""
        if "billfold" not in g:
            g.billfold = Client(app.config["BILLFOLD_URL"], api_key=app.config["BILLFOLD_API_KEY"])
        return g.billfold

    @app.teardown_appcontext
    def close_client(_exc: BaseException | None) -> None:
        client = g.pop("billfold", None)
        if client is not None:
            client.close()

    def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if "user" not in session:
                return redirect(url_for("login", next=request.path))
            return view(*args, **kwargs)

        return wrapped

    @app.context_processor
    def header() -> dict[str, Any]:
        """The credits badge in every page's header."""
        user = session.get("user")
        if user is None:
            return {"user": None, "credits": None}
        return {"user": user, "credits": billfold().get_account(user).balances["credits"]}

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            name = request.form.get("username", "")
            if name in USERS and check_password_hash(USERS[name], request.form.get("password", "")):
                session.clear()
                session["user"] = name
                billfold().update_account(name)  # creates the billing account on first sign-in
                return redirect(request.args.get("next") or url_for("index"))
            flash("Wrong username or password.", "error")
        return render_template("login.html")

    @app.post("/logout")
    def logout() -> Any:
        session.clear()
        return redirect(url_for("login"))

    @app.get("/")
    @login_required
    def index() -> Any:
        packs = billfold().get_catalog().packages
        return render_template("index.html", packs=packs, report_cost=REPORT_COST)

    @app.post("/buy")
    @login_required
    def buy() -> Any:
        checkout = billfold().create_checkout_session(
            session["user"],
            package=request.form["package"],
            success_url=url_for("success", _external=True) + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for("index", _external=True),
        )
        return redirect(checkout.url, code=303)

    @app.get("/success")
    @login_required
    def success() -> Any:
        # Fulfils the order now if Stripe says it is paid; the webhook does the same, and
        # whichever comes first grants: the credits arrive once.
        done = billfold().fulfill_checkout_session(request.args.get("session_id", ""))
        if done.account_id != session["user"]:
            abort(404)
        return render_template("success.html", done=done)

    @app.post("/report")
    @login_required
    def report() -> Any:
        try:
            spent = billfold().spend(
                session["user"],
                "credits",
                REPORT_COST,
                reason="report",
                idempotency_key=request.form.get("request_id") or None,
            )
        except errors.InsufficientBalance as short:
            flash(
                f"A report costs {REPORT_COST} credits and you have {short.available}. "
                "Buy a pack to continue.",
                "error",
            )
            return redirect(url_for("index"), code=303)
        flash(f"Report generated: {REPORT_COST} credits spent, {spent.balance} left.", "ok")
        return redirect(url_for("index"), code=303)

    @app.get("/history")
    @login_required
    def history() -> Any:
        # Only the signed-in user's account is ever asked for.
        transactions = list(billfold().list_transactions(session["user"], limit=50))
        return render_template("history.html", transactions=transactions)

    return app
