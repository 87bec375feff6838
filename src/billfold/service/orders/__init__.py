"""Orders: what one payment buys, fulfilled once, reversed by refunds and disputes.

    fulfilment.py   ``fulfil`` (the one way a payment becomes grants), outcomes that grant nothing,
                    an operator's resolution
    reversals.py    refunds and disputes take back the share of what the payment granted

Order states and the resolution rules themselves are pure, in :mod:`billfold.domain.orders`.
"""
