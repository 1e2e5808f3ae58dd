// "In stock at N stores": an availability line for a product page, kept live over
// Server-Sent Events. Embed it with
//
//   <div data-omnistock-sku="SKU-1" data-omnistock-channel="pickup"></div>
//   <script src="https://stock.example.com/board/widget.js" defer></script>
//
// data-omnistock-channel (optional) limits the count to that channel's locations;
// data-omnistock-noun (optional, default "store") names what is counted.
// When it cannot show availability the element gets data-error (`channel_not_found`,
// `unreachable`, `unauthorized`, ...) and the reason goes to the browser console.
// It calls GET /v1/availability/{sku} once and then follows GET /v1/events?sku=…, so it
// needs a service (or a proxy in front of it) that answers these without an API key, and
// on another origin than the page's, a service that lists the page's origin in
// OMNISTOCK_CORS_ORIGINS.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL("../", script ? script.src : location.href); // the service's root
  var enc = encodeURIComponent;
  var EVENT_TYPES = [
    "stock.sale", "stock.return", "stock.receipt", "stock.adjustment", "stock.count",
    "stock.damage", "stock.transfer_out", "stock.transfer_in", "stock.set", "stock.imported",
    "hold.reserved", "hold.committed", "hold.fulfilled", "hold.released", "hold.expired",
    "hold.aborted", "shortfall",
  ];
  var CSS =
    ".omnistock-widget{font:inherit;display:inline-flex;align-items:center;gap:.45em}" +
    ".omnistock-widget .dot{width:.65em;height:.65em;border-radius:50%;background:#c2352b}" +
    ".omnistock-widget.in .dot{background:#1f8f4e}";

  function mount(el) {
    var sku = el.getAttribute("data-omnistock-sku");
    var channel = el.getAttribute("data-omnistock-channel") || "";
    var noun = el.getAttribute("data-omnistock-noun") || "store";
    var available = new Map(); // location -> units available
    // The channel's own figure (null without a channel): a channel's buffer or exclusion
    // (docs/architecture.md "Channel rules") can make it less than its locations' sum, and no
    // location counts for more than it, as in the API's answer.
    var figure = null;
    var filter = channel ? "&channel=" + enc(channel) : "";
    el.classList.add("omnistock-widget");

    function show() {
      var count = 0;
      available.forEach(function (units) {
        if ((figure === null ? units : Math.min(units, figure)) > 0) count += 1;
      });
      el.setAttribute("data-count", String(count));
      el.classList.toggle("in", count > 0);
      var dot = document.createElement("span");
      dot.className = "dot";
      var text = document.createElement("span");
      if (count === 0) {
        text.textContent = "Out of stock in " + noun + "s";
      } else {
        text.append("In stock at ");
        var strong = document.createElement("strong");
        strong.textContent = String(count);
        text.append(strong, " " + noun + (count === 1 ? "" : "s"));
      }
      el.replaceChildren(dot, text);
    }

    // What went wrong goes to the developer (data-error and the console); the shopper gets
    // a neutral line.
    function fail(code, why) {
      el.setAttribute("data-error", code);
      el.classList.remove("in");
      el.textContent = "Store stock can't be shown right now";
      console.error("omnistock widget (sku " + sku + "): " + why);
    }

    function problem(r) {
      return r.json().catch(function () { return {}; }).then(function (p) {
        var code = p.code || "http_" + r.status;
        var why = (p.detail || "HTTP " + r.status) + " [" + code + "]";
        if (code === "channel_not_found") {
          why += ": create it (PUT " + new URL("v1/channels/" + enc(channel), base) +
            ") or change data-omnistock-channel";
        } else if (code === "unauthorized" || code === "forbidden") {
          why += ": the widget sends no API key; serve GET /v1/availability and /v1/events " +
            "to the public (a proxy in front of the service)";
        }
        var error = new Error(why);
        error.code = code;
        throw error;
      });
    }

    function refresh() {
      var url = new URL("v1/availability/" + enc(sku) + (channel ? "?channel=" + enc(channel) : ""), base);
      return fetch(url, { headers: { Accept: "application/json" } })
        .catch(function () {
          var error = new Error(
            "cannot reach " + url + ": the service is down, or it does not allow this page's " +
            "origin " + location.origin + " (OMNISTOCK_CORS_ORIGINS)");
          error.code = "unreachable";
          throw error;
        })
        .then(function (r) { return r.ok ? r.json() : problem(r); })
        .then(function (a) {
          el.removeAttribute("data-error");
          available.clear();
          figure = channel ? a.available : null;
          a.locations.forEach(function (l) { available.set(l.location, l.available); });
          show();
          return true;
        })
        .catch(function (error) {
          fail(error.code || "error", error.message);
          return false;
        });
    }

    function onEvent(message) {
      var e = JSON.parse(message.data);
      if (e.sku !== sku || !e.position) return;
      available.set(e.location, e.position.available);
      var moved = (e.availability || []).filter(function (c) { return c.channel === channel; });
      if (moved.length) {
        figure = moved[0].after.available;
        var sum = 0;
        available.forEach(function (units) { sum += units; });
        // Not the sum of its locations: a rule limits the channel, and the answer's locations
        // (each at most the figure) can only be read again.
        if (sum !== figure) { refresh(); return; }
      }
      show();
    }

    refresh().then(function (ok) {
      if (!ok) return; // the console says why; a reload tries again
      var source = new EventSource(new URL("v1/events?sku=" + enc(sku) + filter, base));
      EVENT_TYPES.forEach(function (type) { source.addEventListener(type, onEvent); });
      source.addEventListener("reset", refresh); // resumed past retention: read again
      source.addEventListener("open", function () {
        el.setAttribute("data-live", "true");
        refresh(); // whatever changed while connecting
      });
      source.addEventListener("error", function () { el.setAttribute("data-live", "false"); });
    });
  }

  function start() {
    if (!document.getElementById("omnistock-widget-css")) {
      var style = document.createElement("style");
      style.id = "omnistock-widget-css";
      style.textContent = CSS;
      document.head.append(style);
    }
    document.querySelectorAll("[data-omnistock-sku]").forEach(mount);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
