// The floor: a bare pass-through Worker. Whatever a Worker costs before it does any work of its
// own (accepting the request, one subrequest to the upstream, streaming the answer back) is
// measured here, so the other Workers' figures can be read as "above the floor".
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname + url.search, request);
  },
};
