import { render } from "./lib.mjs";
export default async function handler(req) {
  return new Response(render(new URL(req.url).pathname), { headers: { "content-type": "text/html" } });
}
