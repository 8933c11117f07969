// Picks the view from the window's hash: #approval, #signin, or the main window.
import { approvalView } from "./views/approval";
import { mainView } from "./views/main";
import { signinView } from "./views/signin";

const views: Record<string, () => Promise<void>> = {
  "#approval": approvalView,
  "#signin": signinView,
};

void (views[location.hash] ?? mainView)();
