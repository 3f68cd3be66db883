/* Progressive enhancement for the checkout's forms; the pages work without it except
   for the bot check, which needs the reCAPTCHA script.
   - A form marked data-recaptcha gets a fresh reCAPTCHA v3 token just before it is sent.
   - Every form submits once: a second click or Enter while the first is on its way does
     nothing (the server also confirms a change only once).
   - An error summary takes the focus, so screen readers announce it first. */
(function () {
  "use strict";

  var body = document.body;
  var siteKey = body.getAttribute("data-recaptcha-site-key");
  var action = body.getAttribute("data-recaptcha-action") || "checkout";

  function lock(form) {
    form.setAttribute("data-submitted", "true");
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].setAttribute("aria-disabled", "true");
      buttons[i].classList.add("button--busy");
    }
  }

  function unlock(form) {
    form.removeAttribute("data-submitted");
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].removeAttribute("aria-disabled");
      buttons[i].classList.remove("button--busy");
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("data-submitted")) {
      event.preventDefault();
      return;
    }
    lock(form);
    var field = form.querySelector("input[name=recaptcha_token]");
    if (!form.hasAttribute("data-recaptcha") || !field || !window.grecaptcha) {
      return; // sent as it is; without a token the server shows the bot-check page
    }
    event.preventDefault();
    window.grecaptcha.ready(function () {
      window.grecaptcha.execute(siteKey, { action: action }).then(
        function (token) {
          field.value = token;
          form.submit();
        },
        function () {
          form.submit();
        }
      );
    });
  });

  /* Coming back with the back button may restore a page whose forms were locked. */
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      var forms = document.querySelectorAll("form[data-submitted]");
      for (var i = 0; i < forms.length; i += 1) {
        unlock(forms[i]);
      }
    }
  });

  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
  }
})();
