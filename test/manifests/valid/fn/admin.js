export default async function handler() {
  return new Response("admin only");
}
