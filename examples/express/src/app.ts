/**
 * The token shop on Express: token packs bought through Stripe Checkout, tokens spent by a route,
 * a feature only paid tiers may use. billfold does the billing (balances, purchases, webhooks,
 * subscriptions); this file only calls it through `@billfold/client`.
 */

import express, { type NextFunction, type Request, type Response } from "express";

import { type BillfoldClient, BillfoldError, InsufficientBalance } from "@billfold/client";

export const UNIT = "tokens";

export interface ShopOptions {
  billfold: BillfoldClient;
  /** Where the shop is reached by browsers (Stripe sends the customer back here). */
  publicUrl: string;
}

declare module "express-serve-static-core" {
  interface Request {
    userId?: string;
  }
}

/** Tokens a generation costs: one per four characters of prompt, at least one. */
export function cost(prompt: string): number {
  return Math.max(1, Math.ceil(prompt.length / 4));
}

/**
 * Who is asking. Stand-in for your own authentication (a session cookie, a JWT): here the
 * `X-User-Id` header names the signed-in user, whose id is billfold's account id.
 */
function signedIn(req: Request, res: Response, next: NextFunction): void {
  const user = req.get("x-user-id");
  if (!user || !/^[A-Za-z0-9_.:-]{1,64}$/.test(user)) {
    res.status(401).json({ error: "sign in first" });
    return;
  }
  req.userId = user;
  next();
}

type Handler = (req: Request, res: Response) => Promise<void>;

/** Express 5 passes a rejected promise to the error handler; this names the handlers' type. */
const route = (handler: Handler) => handler;

export function createApp({ billfold, publicUrl }: ShopOptions): express.Express {
  const app = express();
  app.use(express.json());
  const base = publicUrl.replace(/\/+$/, "");

  // The packs and tiers for sale, as billfold's catalog describes them.
  app.get(
    "/api/catalog",
    route(async (_req, res) => {
      const catalog = await billfold.catalog();
      res.json({ packs: catalog.packages, plans: catalog.plans });
    }),
  );

  // The header badge: the signed-in user's token balance and tier.
  app.get(
    "/api/me",
    signedIn,
    route(async (req, res) => {
      const user = req.userId!;
      const [balance, plan] = await Promise.all([tokens(billfold, user), billfold.entitlements(user)]);
      res.json({ user, tokens: balance, plan: plan.plan, features: plan.features, limits: plan.limits });
    }),
  );

  // Buy a pack, or subscribe to a tier: billfold opens a Stripe Checkout session.
  app.post(
    "/api/checkout",
    signedIn,
    route(async (req, res) => {
      const { pack, plan } = (req.body ?? {}) as { pack?: string; plan?: string };
      if (!pack === !plan) {
        res.status(400).json({ error: "name a pack or a plan" });
        return;
      }
      const session = await billfold.createCheckoutSession({
        account_id: req.userId!,
        ...(pack ? { package: pack } : { plan: plan! }),
        success_url: `${base}/checkout/success`,
        cancel_url: `${base}/`,
      });
      res.status(201).json({ id: session.id, url: session.url });
    }),
  );

  // Stripe sends the customer back here: fulfil at once (the webhook may still be on its way;
  // whichever comes first grants the tokens, the other finds them granted).
  app.get(
    "/checkout/success",
    route(async (req, res) => {
      const sessionId = String(req.query.session_id ?? "");
      if (!sessionId) {
        res.status(400).json({ error: "session_id is missing" });
        return;
      }
      const done = await billfold.fulfillCheckoutSession(sessionId);
      res.json({ status: done.status, account: done.account_id, tokens: done.balances[UNIT] ?? 0 });
    }),
  );

  // The feature that costs tokens.
  app.post(
    "/api/generate",
    signedIn,
    route(async (req, res) => {
      const prompt = String((req.body as { prompt?: unknown } | undefined)?.prompt ?? "");
      if (!prompt) {
        res.status(400).json({ error: "prompt is missing" });
        return;
      }
      const price = cost(prompt);
      // A request id from the caller makes a retried request spend once.
      const requestId = req.get("idempotency-key");
      const spent = await billfold.spend(
        req.userId!,
        { unit: UNIT, amount: price, reason: "generate" },
        requestId ? { idempotencyKey: `generate:${req.userId}:${requestId}` } : undefined,
      );
      res.json({ text: prompt.split("").reverse().join(""), cost: price, tokens: spent.balance });
    }),
  );

  // The feature only the paid tiers have: asked of billfold's entitlements before anything is spent.
  app.post(
    "/api/long-context",
    signedIn,
    route(async (req, res) => {
      const document = String((req.body as { document?: unknown } | undefined)?.document ?? "");
      const price = cost(document);
      const verdict = await billfold.check(req.userId!, { feature: "long_context", unit: UNIT, amount: price });
      if (!verdict.allowed) {
        const upgrade = verdict.reasons.some((r) => r.code === "feature_not_in_plan");
        res.status(upgrade ? 403 : 402).json({
          error: upgrade ? "long documents need the Plus or Team tier" : "not enough tokens",
          plan: verdict.plan,
          reasons: verdict.reasons.map((r) => r.code),
        });
        return;
      }
      const spent = await billfold.spend(req.userId!, { unit: UNIT, amount: price, reason: "long-context" });
      res.json({ summary: document.slice(0, 40), cost: price, tokens: spent.balance });
    }),
  );

  // Every billfold error the routes did not handle: a short balance is the user's to fix.
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (error instanceof InsufficientBalance) {
      res.status(402).json({ error: "not enough tokens", needed: error.requested, available: error.available });
    } else if (error instanceof BillfoldError && error.status >= 400 && error.status < 500) {
      res.status(error.status).json({ error: error.message, code: error.code });
    } else if (error instanceof BillfoldError) {
      res.status(503).json({ error: "billing is unavailable, try again" });
    } else {
      next(error);
    }
  });
  return app;
}

async function tokens(billfold: BillfoldClient, user: string): Promise<number> {
  try {
    const account = await billfold.getAccount(user);
    return account.balances[UNIT] ?? 0;
  } catch (error) {
    if (error instanceof BillfoldError && error.status === 404) return 0; // no purchase yet
    throw error;
  }
}
