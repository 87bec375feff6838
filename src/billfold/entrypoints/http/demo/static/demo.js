// Inkwell's success page: confirm the checkout (a pack or a plan) with billfold using the
// signed-in user's token, show the new balance at once, and follow a delayed payment until it
// settles.
// Amounts are integers in minor units; they are formatted with BigInt, never as floats.
"use strict";

(function () {
  const outcome = document.getElementById("outcome");
  const dataNode = document.getElementById("page-data");
  const tokenNode = document.querySelector('meta[name="billfold-user-token"]');
  if (!outcome || !dataNode || !tokenNode) return;
  const page = JSON.parse(dataNode.textContent);
  const token = tokenNode.getAttribute("content");
  const sessionId = outcome.dataset.sessionId;
  const SYMBOLS = { usd: "$", eur: "€", gbp: "£", jpy: "¥", inr: "₹", cad: "CA$", aud: "A$" };
  const started = Date.now();
  let attempt = 0;

  function number(amount, decimals) {
    const value = BigInt(amount);
    const negative = value < 0n;
    const abs = negative ? -value : value;
    const base = 10n ** BigInt(decimals);
    const major = (abs / base).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const minor = decimals ? "." + (abs % base).toString().padStart(decimals, "0") : "";
    return (negative ? "-" : "") + major + minor;
  }

  function units(amount, unit) {
    const decimals = page.units[unit] || 0;
    if (decimals && unit.length === 3 && SYMBOLS[unit]) return SYMBOLS[unit] + number(amount, decimals);
    if (decimals && unit.length === 3) return number(amount, decimals) + " " + unit.toUpperCase();
    const text = number(amount, decimals);
    return (text === "1" && unit.endsWith("s") ? "1 " + unit.slice(0, -1) : text + " " + unit);
  }

  function show(state, title, text, lines) {
    outcome.className = "card outcome outcome-" + state;
    outcome.dataset.state = state;
    document.getElementById("outcome-title").textContent = title;
    document.getElementById("outcome-text").textContent = text;
    const list = document.getElementById("outcome-lines");
    list.replaceChildren(...(lines || []).map((line) => {
      const item = document.createElement("li");
      item.textContent = line;
      return item;
    }));
  }

  function showBalances(balances) {
    for (const node of document.querySelectorAll("[data-balance]")) {
      const unit = node.dataset.balance;
      node.textContent = units(balances[unit] || 0, unit);
    }
  }

  function granted(order) {
    const pack = order && page.packages[order.package];
    if (!pack) return [];
    const parts = pack.grants.map((grant) => {
      const amount = grant.amount === "paid" ? order.amount || 0 : grant.amount;
      return "+" + units(amount, grant.unit) + (grant.kind === "bonus" ? " bonus" : "");
    });
    return [pack.title + ": " + parts.join(", ")];
  }

  function allowance(plan) {
    if (!plan) return [];
    return plan.allowance.filter((grant) => grant.amount !== "paid").map(
      (grant) => plan.title + ": " + units(grant.amount, grant.unit) + " every " + plan.interval);
  }

  function later(ms) {
    window.setTimeout(confirm, ms);
  }

  function nextDelay() {
    attempt += 1;
    return Math.min(750 * attempt, 4000);
  }

  async function confirm() {
    let response;
    try {
      response = await fetch(page.apiBase + "/v1/checkout/sessions/" + encodeURIComponent(sessionId) + "/fulfill", {
        method: "POST",
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      });
    } catch (error) {
      show("pending", "Reconnecting…", "We could not reach the server; trying again.", []);
      return later(nextDelay());
    }
    let body = {};
    try { body = await response.json(); } catch (error) { body = {}; }
    if (response.status === 401) {
      window.location.reload(); // the page's token expired: a fresh page signs a new one
      return;
    }
    if (response.status === 429 || response.status >= 500) {
      show("pending", "Still confirming…", "The payment service is busy; trying again.", []);
      return later(Math.max(nextDelay(), 3000));
    }
    if (!response.ok) {
      const message = (body.error && body.error.message) || "We could not confirm this payment.";
      show("error", "Something went wrong", message, []);
      return;
    }
    if (body.balances) showBalances(body.balances);
    const status = body.status;
    if (status === "fulfilled" && body.mode === "subscription") {
      const plan = page.plans[body.plan];
      const title = plan ? plan.title : body.plan;
      show("done", title ? "Welcome to " + title + "!" : "Subscribed. Thank you!",
        "Your subscription is active: its features are yours now.", allowance(plan));
    } else if (status === "fulfilled" || status === "refunded") {
      show("done", "Payment received. Thank you!", "Your balance is already up to date.", granted(body.order));
    } else if (status === "needs_attention") {
      show("review", "Payment received, being checked",
        "We received your payment and are checking it. Your balance will be updated shortly.", []);
      later(5000);
    } else if (status === "failed" || status === "expired") {
      show("failed", status === "failed" ? "The payment did not go through" : "Checkout expired",
        "Nothing was added to your balance.", []);
    } else if (Date.now() - started > 10 * 60 * 1000) {
      show("pending", "Payment pending", "This is taking longer than usual. Your balance updates when it clears.", []);
    } else if (body.session_status === "open") {
      show("pending", "Waiting for your payment", "This checkout is not paid yet.", []);
      later(nextDelay());
    } else {
      show("pending", "Payment pending",
        "Your bank debit is processing. Your credits arrive as soon as it clears; this page updates by itself.", []);
      later(nextDelay());
    }
  }

  confirm();
})();
