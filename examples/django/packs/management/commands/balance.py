from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from packs import billing


class Command(BaseCommand):
    help = "Show a user's balances in billfold."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("user", help="The username.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        User = get_user_model()
        try:
            user = User.objects.get(username=options["user"])
        except User.DoesNotExist:
            raise CommandError(f"No user {options['user']!r}.") from None
        with billing.client() as billfold:
            account = billfold.get_account(billing.account_id(user))
        for unit, amount in sorted(account.balances.items()):
            self.stdout.write(f"{user.username}: {amount:,} {unit}")
