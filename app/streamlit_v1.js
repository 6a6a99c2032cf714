// Streamlit's component protocol v1 — THE LIBRARY'S PROTOCOL, not this project's: the messages Streamlit's
// `components.v1` iframes exchange with the page around them, and the only place in app/ that posts to
// the parent window. Used by app/live_chart.html, which stays a v1 component because it ships plotly.js
// (4.8 MB) as a file beside its page; a v2 component could carry it only inline, in every run's element
// (docs/dashboard.md, "Evaluated and left"). The streaming controls are v2 (app/live_controls.js).
const StreamlitV1 = (function () {
  "use strict";
  function tell(type, data) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
  }
  return {
    /** Say the component is listening; Streamlit then sends the first render. */
    ready: () => tell("streamlit:componentReady", { apiVersion: 1 }),
    /** The iframe's height in CSS pixels. */
    setFrameHeight: (height) => tell("streamlit:setFrameHeight", { height: height }),
    /** handler({args, theme, disabled}) for every render Streamlit sends. */
    onRender: (handler) => window.addEventListener("message", (event) => {
      if (event.data && event.data.type === "streamlit:render") handler(event.data);
    }),
  };
})();
