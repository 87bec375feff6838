"""A stateful stand-in for the part of Stripe that billfold uses, served over HTTP.

The official ``stripe`` SDK talks to it unchanged (point ``api_base`` at it); its hosted checkout
page pays, declines or pays late; the events it emits are signed and delivered to a webhook URL,
with Stripe's retries and, when asked, its duplicates, delays and reordering.

    app = create_simulator_app(SimulatorConfig(webhook_url=..., webhook_secret="whsec_..."))
"""

from billfold.simulator.app import create_simulator_app
from billfold.simulator.config import ChaosSettings, RetryPolicy, SimulatorConfig

__all__ = ["ChaosSettings", "RetryPolicy", "SimulatorConfig", "create_simulator_app"]
