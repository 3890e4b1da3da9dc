export default async function handler(req) {
  return Response.json({ ok: true, path: new URL(req.url).pathname });
}
