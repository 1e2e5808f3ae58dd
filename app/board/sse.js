// Server-Sent Events over fetch(): what EventSource does (reconnect, resume with
// Last-Event-ID, honour `retry:`), plus an Authorization header, which EventSource cannot
// send. The board uses it so it also works against a service that requires API keys.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function openEventStream(url, { apiKey = "", onEvent, onState = () => {} }) {
  let lastEventId = "";
  let retryMs = 1000;
  let stopped = false;
  let controller = null;

  function dispatch(block) {
    let type = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line === "" || line.startsWith(":")) continue; // a comment: keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") lastEventId = value;
      else if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (data.length === 0) return;
    let payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch {
      return; // not one of ours
    }
    onEvent({ id: lastEventId, type, data: payload });
  }

  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = { Accept: "text/event-stream" };
        if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
        if (lastEventId) headers["Last-Event-ID"] = lastEventId;
        const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        let live = false;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          // The service subscribes before it sends the first bytes: from here on nothing is
          // missed (the headers alone come earlier).
          if (!live) {
            live = true;
            onState("live");
          }
          buffer += value;
          let end;
          while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
            dispatch(block);
          }
        }
        if (!stopped) onState("reconnecting", new Error("stream closed"));
      } catch (error) {
        if (stopped) return;
        onState("reconnecting", error);
      }
      await sleep(retryMs);
    }
  }

  run();
  return {
    close() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}
