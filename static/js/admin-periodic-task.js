// django-celery-beat's periodic task form: shows the chosen crontab in words under the field.
// Moved out of the package's inline <script> so the admin runs under a CSP without 'unsafe-inline'.
(function ($) {
  "use strict";
  var readableCrontabs = JSON.parse($("#readable-crontabs").text());
  var help = $(".field-crontab .help");
  var originalCrontabHelp = help.html();

  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    var additional = readableCrontabs[$("#id_crontab").val()];
    help.html(originalCrontabHelp + "<br/>Translation: ").append(document.createTextNode(additional || ""));
  });
})(django.jQuery);
