/**
 * Start the token shop: `BILLFOLD_URL=... BILLFOLD_API_KEY=... npm start` (PORT, default 3000).
 */

import { createClient } from "@billfold/client";

import { createApp } from "./app.js";

const billfoldUrl = process.env.BILLFOLD_URL ?? "http://127.0.0.1:8000";
const apiKey = process.env.BILLFOLD_API_KEY;
if (!apiKey) {
  console.error("BILLFOLD_API_KEY is not set: use the API key `billfold dev` prints");
  process.exit(1);
}
const port = Number(process.env.PORT ?? 3000);
const publicUrl = process.env.PUBLIC_URL ?? `http://127.0.0.1:${port}`;

const app = createApp({ billfold: createClient({ baseUrl: billfoldUrl, apiKey }), publicUrl });
const server = app.listen(port, () => console.log(`token shop on ${publicUrl} (billing: ${billfoldUrl})`));
process.on("SIGTERM", () => server.close());
