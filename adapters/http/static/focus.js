// Focus on load, for keyboard users: the first field the ledger refused, else the refusal, else the
// page's main field (autofocus), else its heading. No other script runs on the pages.
document.addEventListener("DOMContentLoaded", function () {
  if (document.activeElement && document.activeElement !== document.body) return;
  var target = document.querySelector("[aria-invalid=true]") || document.querySelector("main [role=alert]")
    || document.querySelector("[autofocus]") || document.querySelector("main h1");
  if (!target) return;
  if (!/^(INPUT|SELECT|TEXTAREA|BUTTON|A)$/.test(target.tagName) && !target.hasAttribute("tabindex")) {
    target.setAttribute("tabindex", "-1");
  }
  target.focus();
});
