// The board's "Nearby" panel: the POS flow "sold out here -> nearby stores -> hold at store 7
// for this customer". Reads GET /v1/availability/{sku}/nearby from a chosen store's
// coordinates; each row's button makes a hold pinned to that store (needs the reserve scope).
const $ = (selector) => document.querySelector(selector);
const enc = encodeURIComponent;

export function setupNearby({ api, apiKey, sku, locations }) {
  const headers = (json) => {
    const h = { Accept: "application/json" };
    if (json) h["Content-Type"] = "application/json";
    if (apiKey()) h.Authorization = `Bearer ${apiKey()}`;
    return h;
  };
  const say = (text) => {
    $("#nearby-result").textContent = text;
    $("#nearby-result").hidden = !text;
  };

  // The stores with coordinates, as starting points.
  function refresh() {
    const select = $("#nearby-from");
    const current = select.value;
    const placed = [...locations().values()].filter((l) => l.geo);
    select.replaceChildren(
      ...placed.map((l) => Object.assign(document.createElement("option"), {
        value: l.id, textContent: l.name ? `${l.name} (${l.id})` : l.id,
      })),
    );
    if (placed.some((l) => l.id === current)) select.value = current;
    $("#nearby-card").hidden = placed.length === 0;
  }

  // `keep`: leave the last message (a hold's answer) in place.
  async function find(keep = false) {
    const from = locations().get($("#nearby-from").value);
    if (!from || !sku()) return;
    const params = new URLSearchParams({
      lat: from.geo.lat, lon: from.geo.lon,
      radius_km: $("#nearby-radius").value, quantity: $("#nearby-qty").value,
    });
    const response = await fetch(new URL(`availability/${enc(sku())}/nearby?${params}`, api), {
      headers: headers(false), cache: "no-store",
    });
    const body = await response.json().catch(() => ({}));
    const rows = $("#nearby tbody");
    rows.replaceChildren();
    if (!response.ok) return say(body.detail || `HTTP ${response.status}`);
    if (!keep) say(body.locations.length ? "" : "no store within the radius has it");
    for (const l of body.locations) {
      const row = rows.insertRow();
      row.dataset.location = l.location;
      row.insertCell().textContent = l.name ? `${l.name} (${l.location})` : l.location;
      Object.assign(row.insertCell(), { textContent: l.distance_km.toFixed(1), className: "num" });
      Object.assign(row.insertCell(), { textContent: String(l.available), className: "num" });
      const button = Object.assign(document.createElement("button"), {
        type: "button", textContent: `Hold ${$("#nearby-qty").value} here`,
      });
      button.addEventListener("click", () => hold(l.location));
      row.insertCell().append(button);
    }
  }

  async function hold(location) {
    const body = {
      reference: $("#nearby-ref").value.trim() || null,
      lines: [{ sku: sku(), quantity: Number($("#nearby-qty").value), location }],
    };
    const response = await fetch(new URL("holds", api), {
      method: "POST", headers: headers(true), body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    say(response.ok ? `held at ${location}: hold ${answer.id}, until ${answer.expires_at}`
      : `${answer.code || response.status}: ${answer.detail || ""}`);
    if (response.ok) find(true);
  }

  $("#nearby-form").addEventListener("submit", (event) => {
    event.preventDefault();
    find();
  });
  return { refresh };
}
