from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from packs import billing
from packs.models import Purchase


@login_required
def shop(request: HttpRequest) -> HttpResponse:
    with billing.client() as billfold:
        account = billing.account_id(request.user)
        billfold.update_account(account, email=request.user.email or None)
        balance = billfold.get_account(account).balances.get("credits", 0)
        packs = billing.packs(billfold).values()
    return render(request, "packs/shop.html", {"packs": packs, "balance": balance})


@require_POST
@login_required
def buy(request: HttpRequest) -> HttpResponse:
    with billing.client() as billfold:
        pack = billing.packs(billfold).get(request.POST.get("price_id", ""))
        if pack is None:
            raise Http404("No pack at this price.")
        success = request.build_absolute_uri(reverse("success"))
        checkout = billfold.create_checkout_session(
            billing.account_id(request.user),
            package=pack.package,
            success_url=success + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=request.build_absolute_uri(reverse("shop")),
        )
    Purchase.objects.create(
        user=request.user,
        price_id=pack.price_id,
        package=pack.package,
        credits=pack.credits,
        session_id=checkout.id,
    )
    return redirect(checkout.url)


@login_required
def success(request: HttpRequest) -> HttpResponse:
    purchase = get_object_or_404(
        Purchase, session_id=request.GET.get("session_id", ""), user=request.user
    )
    with billing.client() as billfold:
        # The webhook (pointed at billfold) grants; this grants too if it comes first: once.
        done = billfold.fulfill_checkout_session(purchase.session_id)
    purchase.status = done.status
    purchase.save(update_fields=["status", "updated"])
    if done.status == "fulfilled":
        messages.success(request, f"{purchase.credits:,} credits added.")
    return render(
        request,
        "packs/success.html",
        {"purchase": purchase, "balance": done.balances.get("credits", 0)},
    )


@staff_member_required(login_url="login")
def audit(request: HttpRequest) -> HttpResponse:
    """Every purchase, with billfold's word on the pending ones (fulfilling any that is paid)."""
    purchases = list(Purchase.objects.select_related("user"))
    with billing.client() as billfold:
        for purchase in purchases:
            if purchase.status == "pending":
                purchase.status = billfold.fulfill_checkout_session(purchase.session_id).status
                purchase.save(update_fields=["status", "updated"])
    return render(request, "packs/audit.html", {"purchases": purchases})
