/**
 * setsid + nohup detach backend, for boxes without tmux: each lane runs in its own session with stdin
 * from /dev/null and output to <state_dir>/lanes/<lane>.out, so neither a closed SSH connection nor a
 * hang-up reaches it. State files, status and stop are the same as with tmux.
 */
import { sshBackend } from "./ssh.js";

export const nohupBackend = sshBackend("nohup");
