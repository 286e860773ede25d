// Live filter of the zoo index: hides the rows whose name, problem, formula or tags do not
// contain the search text (the form also works without script: ?q= filters on the server).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("search");
  if (!box) {
    return;
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.model-row"));
  var shown = document.getElementById("shown");
  function apply() {
    var needle = box.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var hit = needle === "" || row.getAttribute("data-search").indexOf(needle) !== -1;
      row.hidden = !hit;
      if (hit) {
        count += 1;
      }
    });
    if (shown) {
      shown.textContent = String(count);
    }
  }
  box.addEventListener("input", apply);
  apply();
});
