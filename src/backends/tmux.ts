/** tmux detach backend: each lane of a run is a window of the tmux session `rgt-<run_id>` on the box. */
import { sshBackend } from "./ssh.js";

export const tmuxBackend = sshBackend("tmux");
