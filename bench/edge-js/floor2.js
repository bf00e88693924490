// The floor of a protected request: a bare pass-through that first makes the one Upstash
// `/pipeline` call a protected request costs (the same POST, its answer read and ignored), then
// forwards. Whatever any Worker pays for the platform's two subrequests is measured here, so the
// edges' protected figures can be read as "above the two-subrequest floor": what their own
// routing, decision and signing cost. Public routes (`/health`) pass straight through, as in
// floor.js.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname !== "/health") {
      const lookup = await fetch(`${env.UPSTASH_REDIS_REST_URL}/pipeline`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${env.UPSTASH_REDIS_REST_TOKEN}`,
          "content-type": "application/json",
        },
        body: JSON.stringify([["HMGET", `${env.REDIS_KEY_PREFIX || ""}tg:{floor}`, "j:floor", "v"]]),
      });
      await lookup.arrayBuffer();
    }
    return fetch(env.UPSTREAM + url.pathname + url.search, request);
  },
};
