// What the signed-in app knows: my rooms and each one's state, my invitations, and which room is open. Plain data:
// the sync modules change it, and the views read it.

import type { Invitation, Profile, Room } from "../types";
import { newRoomState, type RoomState } from "./room";

export class ChatState {
  readonly rooms = new Map<string, Room>();
  private readonly states = new Map<string, RoomState>();
  invitations: Invitation[] = [];
  /** The open room, if any. */
  current: string | null = null;

  constructor(readonly me: Profile) {}

  /** A room's state, made empty the first time it is asked for (events may come before the room list). */
  room(roomId: string): RoomState {
    let s = this.states.get(roomId);
    if (!s) {
      s = newRoomState();
      this.states.set(roomId, s);
    }
    return s;
  }
}
