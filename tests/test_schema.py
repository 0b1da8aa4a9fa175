"""The data contract as code: layouts, joints, frame strings, the smoothing rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_analysis import schema


def test_face_layouts_cover_every_float_once():
    for layout in (schema.FACE_LAYOUT, schema.FACE_LAYOUT_LEGACY):
        parts = [layout.expression, layout.jaw, layout.shape] + ([layout.head_rotation] if layout.head_rotation else [])
        covered = np.concatenate([np.arange(p.start, p.stop) for p in parts])
        assert sorted(covered.tolist()) == list(range(layout.length))


def test_face_layout_is_detected_by_length():
    assert schema.face_layout_for(156) is schema.FACE_LAYOUT
    assert schema.face_layout_for(153).head_rotation is None
    with pytest.raises(ValueError, match="156.*153|153.*156"):
        schema.face_layout_for(150)


def test_tokenizer_columns_are_expression_and_jaw():
    assert schema.FACE_TOKEN_DIM == 53
    assert schema.FACE_TOKEN_COLUMNS == list(range(50)) + [53, 54, 55]
    assert schema.face_layout_for(153).tokenizer_columns() == list(range(50)) + [50, 51, 52]
    assert schema.BODY_TOKEN_DIM == 117


def test_body_layout_covers_179_floats():
    parts = [schema.BODY_ROOT, schema.BODY_JOINTS, schema.BODY_LEFT_HAND, schema.BODY_RIGHT_HAND,
             schema.BODY_JAW, schema.BODY_BETAS, schema.BODY_EXPRESSION]  # fmt: skip
    covered = np.concatenate([np.arange(p.start, p.stop) for p in parts])
    assert sorted(covered.tolist()) == list(range(schema.BODY_DIM))


def test_body_tokens_start_at_left_collar_and_end_with_the_right_hand():
    assert schema.body_joint_slice("left_collar").start == schema.BODY_TOKEN_SLICE.start
    assert schema.body_joint_slice("right_thumb3").stop == schema.BODY_TOKEN_SLICE.stop
    assert schema.token_joint_slice("head") == slice(6, 9)  # collars, then the head
    assert schema.token_joint_slice("left_index1").start == schema.BODY_TOKEN_LEFT_HAND.start
    assert schema.token_joint_slice("right_index1").start == schema.BODY_TOKEN_RIGHT_HAND.start
    with pytest.raises(KeyError, match="tokenized"):
        schema.token_joint_slice("left_knee")
    with pytest.raises(KeyError):
        schema.body_joint_slice("tail")


def test_skeleton_topology():
    assert schema.N_JOINTS == 55 and len(schema.JOINT_PARENTS) == 55
    assert schema.JOINT_PARENTS[0] == -1
    assert all(p < j for j, p in enumerate(schema.JOINT_PARENTS) if j), "parents come first"
    name = schema.JOINT_NAMES
    parent = lambda n: name[schema.JOINT_PARENTS[schema.JOINT_INDEX[n]]]  # noqa: E731
    assert parent("head") == "neck" and parent("neck") == "spine3"
    assert parent("left_wrist") == "left_elbow" and parent("right_index1") == "right_wrist"
    assert parent("left_thumb3") == "left_thumb2" and parent("jaw") == "head"
    assert len(schema.SMPLH_JOINTS) == 52 and len(schema.SMPL_BODY_JOINTS) == 22
    # the 21 stored body joints are SMPL-X joints 1..21, in order
    assert schema.BODY_JOINT_ORDER == name[1:22]


@given(st.integers(min_value=0, max_value=10**7), st.text(alphabet="abc0123_", max_size=8))
def test_frame_index_is_the_first_underscore_field(index, rest):
    assert schema.parse_frame_index(f"{index}_{rest}") == index
    assert schema.parse_frame_index(f"{index:08d}") == index
    assert schema.parse_frame_index(index) == index


def test_bad_frame_strings_name_the_value():
    with pytest.raises(ValueError, match="'abc_1'"):
        schema.parse_frame_index("abc_1")


@pytest.mark.parametrize("n,window", [(0, 0), (1, 0), (2, 0), (3, 3), (4, 3), (5, 5), (6, 5), (500, 5)])
def test_savgol_window_rule(n, window):
    assert schema.savgol_window_for(n) == window


def test_features_and_duration_format():
    assert set(schema.REQUIRED_COLUMNS) <= set(schema.VENUS_FEATURES)
    assert schema.format_duration(3660, 4260) == "01:01:00 ~ 01:11:00"
