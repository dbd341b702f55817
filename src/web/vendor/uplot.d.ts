// The browser loads uPlot from /dashboard/vendor/uplot.js, which the server answers with the uplot package's
// ES module (node_modules, no CDN); this declaration gives that URL the package's types.
import uPlot from 'uplot';
export default uPlot;
