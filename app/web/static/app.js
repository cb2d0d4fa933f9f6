/* Outreach UI behaviour without inline scripts (the CSP forbids them). */
(function () {
  "use strict";
  // <select data-autosubmit>: submit its form when the choice changes (the simulator's patient picker).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.matches && target.matches("select[data-autosubmit]") && target.form) {
      target.form.submit();
    }
  });
})();
