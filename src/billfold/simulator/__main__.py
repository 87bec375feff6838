"""Run the simulator on its own: ``python -m billfold.simulator --port 12111 --webhook-url ...``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from billfold.simulator.app import create_simulator_app
from billfold.simulator.config import (
    API_VERSION,
    ChaosSettings,
    DunningPolicy,
    RetryPolicy,
    SimulatorConfig,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m billfold.simulator",
        description="A Stripe stand-in: the API subset billfold uses, a hosted checkout page, "
        "and signed webhook delivery.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--public-base-url", help="the simulator's URL as a browser sees it")
    parser.add_argument("--webhook-url", help="where events are POSTed (none: not delivered)")
    parser.add_argument("--webhook-secret", default="whsec_simulator")
    parser.add_argument("--state-path", type=Path, help="keep the state in this JSON file")
    parser.add_argument(
        "--api-version",
        default=API_VERSION,
        help="the version events are written in (2024-06-20 for the pre-basil shapes)",
    )
    parser.add_argument(
        "--clock-advance-seconds",
        type=float,
        default=0.5,
        help="how long a test clock stays advancing before it runs what the new time brings",
    )
    parser.add_argument(
        "--async-settle-seconds",
        type=float,
        default=2.0,
        help="how long a delayed payment takes to settle (negative: only when asked)",
    )
    chaos = parser.add_argument_group("chaos")
    chaos.add_argument("--duplicate-rate", type=float, default=0.0)
    chaos.add_argument("--delay", type=float, nargs=2, metavar=("LOW", "HIGH"), default=(0, 0))
    chaos.add_argument("--reorder", action="store_true")
    chaos.add_argument("--drop-first-attempt-rate", type=float, default=0.0)
    chaos.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        help="share of events never delivered (only the Events API has them)",
    )
    chaos.add_argument(
        "--same-second",
        action="store_true",
        help="events emitted together (a renewal chain, say) share one created timestamp",
    )
    chaos.add_argument("--seed", type=int)
    retry = parser.add_argument_group("retries")
    retry.add_argument("--retry-base-seconds", type=float, default=1.0)
    retry.add_argument("--retry-max-seconds", type=float, default=60.0)
    retry.add_argument("--max-attempts", type=int, default=8)
    dunning = parser.add_argument_group("dunning (failed invoice payments)")
    dunning.add_argument(
        "--dunning-retry-days",
        type=int,
        nargs="*",
        default=[3, 5, 7],
        metavar="DAYS",
        help="retry a failed invoice after these many days, each after the previous attempt",
    )
    dunning.add_argument(
        "--dunning-final-status",
        choices=["canceled", "unpaid", "past_due"],
        default="canceled",
        help="what a subscription becomes when the last retry fails",
    )
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        public_base_url=args.public_base_url,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        state_path=args.state_path,
        async_settle_seconds=None if args.async_settle_seconds < 0 else args.async_settle_seconds,
        api_version=args.api_version,
        clock_advance_seconds=args.clock_advance_seconds,
        dunning=DunningPolicy(
            retry_after_days=tuple(args.dunning_retry_days),
            subscription_status=args.dunning_final_status,
        ),
        chaos=ChaosSettings(
            duplicate_rate=args.duplicate_rate,
            delay_seconds=(args.delay[0], args.delay[1]),
            reorder=args.reorder,
            drop_first_attempt_rate=args.drop_first_attempt_rate,
            drop_rate=args.drop_rate,
            same_second=args.same_second,
            seed=args.seed,
        ),
        retry=RetryPolicy(
            base_seconds=args.retry_base_seconds,
            max_seconds=args.retry_max_seconds,
            max_attempts=args.max_attempts,
        ),
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    app = create_simulator_app(config_from_args(args))
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
