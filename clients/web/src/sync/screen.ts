// What the sync modules ask of the screen after they changed the state (the app draws; they never touch the DOM).

export interface Screen {
  rooms(): void;
  invitations(): void;
  header(): void;
  messages(forceBottom?: boolean): void;
  typing(): void;
  composerBar(): void;
  announce(text: string, error?: boolean): void;
  /** The room is open, scrolled to its end and visible: what arrives in it is read at once. */
  reading(roomId: string): boolean;
  /** Before older messages are put above: returns what keeps the same message in view after. */
  keepScrollPosition(): () => void;
}
