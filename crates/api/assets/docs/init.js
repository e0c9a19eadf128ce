// Renders /openapi.json (relative to this page, so it works behind a path prefix). No
// validator: Swagger UI would otherwise send the document to validator.swagger.io.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
  });
});
