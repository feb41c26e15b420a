// billing-ops console: keyboard navigation of the queue (j/k, enter) and the copy button.
// Loaded from a file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  var selectedId = null;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-table tbody tr[data-href]"));
  }

  function select(row) {
    rows().forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    if (!row) { return; }
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    selectedId = row.getAttribute("data-case-id");
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.findIndex(function (r) { return r.classList.contains("selected"); });
    index = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, index + step));
    select(all[index]);
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    if (!document.getElementById("queue-table")) { return; }
    if (event.key === "j") { move(1); event.preventDefault(); }
    else if (event.key === "k") { move(-1); event.preventDefault(); }
    else if (event.key === "Enter") {
      var row = document.querySelector("#queue-table tbody tr.selected");
      if (row) { window.location.assign(row.getAttribute("data-href")); event.preventDefault(); }
    }
  });

  // The queue refreshes in place (htmx): keep the operator's selection on the same case.
  document.addEventListener("htmx:afterSwap", function () {
    if (selectedId === null) { return; }
    var row = document.querySelector('#queue-table tbody tr[data-case-id="' + selectedId + '"]');
    if (row) { select(row); }
  });

  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? "Copied" : "Select and copy";
    button.setAttribute("data-copied", ok ? "yes" : "no");
    window.setTimeout(function () { button.textContent = label; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy-target]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) { return; }
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button, true); },
                                               function () { copied(button, false); });
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      copied(button, document.execCommand("copy"));
    }
  });

  // A confirm step's extra checkbox: the submit stays disabled until it is ticked (without
  // JavaScript the button stays enabled and the server refuses an unticked box).
  function syncEnables(box) {
    var button = document.getElementById(box.getAttribute("data-enables"));
    if (button) { button.disabled = !box.checked; }
  }
  document.querySelectorAll("input[data-enables]").forEach(syncEnables);
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches && box.matches("input[data-enables]")) { syncEnables(box); }
  });
})();
