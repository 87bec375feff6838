"""The chaos audit (``billfold audit``): purchases, renewals, refunds and disputes driven through
the Stripe simulator under the worst delivery Stripe can produce, then every payment checked
against what billfold granted and took back.

    driver.py    the run: start or reach billfold, drive, settle, reconcile, verify, audit
    report.py    the arithmetic: expected against actual, per package and per plan (pure)
    servers.py   the processes a run starts: the simulator's thread, ``billfold serve``

The CLI command (``entrypoints/cli/audit.py``) and the tests share :func:`driver.run`.
"""
