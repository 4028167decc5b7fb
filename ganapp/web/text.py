"""Every string the page shows, in English and Traditional Chinese (Taiwan), in one table.

The settings' own labels and help live with the config fields (ganapp/config.py, field
metadata); the presets' titles and notes in ganapp/presets.py. This module holds the rest:
the page's labels, states, captions, messages, the technique notes and the glossary.

Terms follow /shared/CLASSROOM.md (the origin article's: 特徵匹配, 小批次判別, 歷史平均法,
單邊的標籤平滑, 虛擬的批次歸一化; generator / discriminator as 生成器 / 判別器).

Why the server translates rather than gr.I18n alone: gr.I18n follows the browser's
language only (navigator.language), while a teacher's link carries the language
(`?lang=zh-TW`) and a student switches in the page; the server also writes the captions,
states and messages, which gr.I18n does not reach. So the page is drawn in the visitor's
language on load and relabelled in one event when they switch.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = {"en": "English", "zh-TW": "繁體中文"}
DEFAULT_LANGUAGE = "en"

# key -> (English, 繁體中文). Format fields in braces.
TEXT: dict[str, tuple[str, str]] = {
    # ------------------------------------------------------------ the first screen
    "title": ("Why is GAN training hard? Watch it live",
              "為什麼生成對抗網路（GAN）很難訓練？現場看它學習"),
    "language": ("Language", "語言"),
    "copy_link": ("Copy the link for the class", "複製給全班的連結"),
    "link_box": ("Link for the class (settings, preset, language and view)", "給全班的連結（設定、預設實驗、語言與檢視）"),
    "link_copied": ("Link ready: it is in the box below the header (and on the clipboard where the browser allows).",
                    "連結已產生：在標題下方的框中（瀏覽器允許時也已複製）。"),
    "preset": ("Preset (a measured setting and its vanilla partner)", "預設實驗（測量過的設定與原始 GAN 對照）"),
    "preset_none": ("(choose a preset)", "（選擇預設實驗）"),
    "pair_button": ("▶ Start the pair: preset beside vanilla", "▶ 開始對照：預設實驗與原始 GAN 並排"),
    "start": ("Start", "開始"),
    "stop": ("Stop", "停止"),
    "ready_made": ("Ready-made run (opens in a second, nothing to train)", "現成的訓練結果（一秒內開啟，不必訓練）"),
    "ready_none": ("(open a finished run)", "（開啟已完成的訓練）"),
    "settings": ("Settings: data, techniques, training", "設定：資料、技巧、訓練"),
    "run_name": ("Run name (optional)", "訓練名稱（可不填）"),
    "group_data": ("Data set", "資料集"),
    "group_technique": ("The five techniques (Salimans et al. 2016)", "五種技巧（Salimans 等人，2016）"),
    "group_training": ("Training", "訓練"),
    "group_advanced": ("Advanced settings", "進階設定"),
    "look_for_title": ("What to look for", "要看什麼"),
    # ------------------------------------------------------------ states and captions
    "state_none": ("no run yet", "還沒有訓練"),
    "state_queued": ("queued", "排隊中"),
    "state_starting": ("starting", "啟動中"),
    "state_running": ("running", "訓練中"),
    "state_paused": ("paused", "已暫停"),
    "state_stopping": ("stopping", "停止中"),
    "state_stopped": ("stopped", "已停止"),
    "state_finished": ("finished", "已完成"),
    "state_failed": ("failed", "失敗"),
    "state_interrupted": ("interrupted", "已中斷"),
    "queued_at": ("queued (#{n} in line)", "排隊中（第 {n} 位）"),
    "queued_after_own": ("queued (#{n}, after your other runs)", "排隊中（第 {n} 位，在你的其他訓練之後）"),
    "no_run_what": ("Choose a preset and press “Start the pair”, or set up a run and press Start.",
                    "選一個預設實驗，按「開始對照」；或調整設定後按「開始」。"),
    "step_of": ("step {step} / {total}", "第 {step} 步 / 共 {total} 步"),
    "step_only": ("step {step}", "第 {step} 步"),
    "speed": ("{speed} steps/s · {seconds} s", "每秒 {speed} 步 · {seconds} 秒"),
    "speed_none": ("– steps/s · {seconds} s", "每秒 – 步 · {seconds} 秒"),
    "vanilla": ("vanilla (no technique)", "原始 GAN（沒有技巧）"),
    "seed": ("seed {seed}", "隨機種子 {seed}"),
    "from_checkpoint": ("checkpoint", "檢查點"),
    "headline_modes": ("modes {n} / {total}", "涵蓋的模式數 {n} / {total}"),
    "headline_quality": ("{value}% high-quality", "高品質樣本比例 {value}%"),
    "headline_classes": ("classes {n}, score {score}", "涵蓋的類別數 {n}，分類器分數 {score}"),
    "headline_distance": ("distance to real data {value}", "與真實資料的距離 {value}"),
    "headline_none": ("quality: not measured yet", "品質：尚未量測"),
    "held": ("shown at step {shown} to match the other side; trained to {step}",
             "顯示第 {shown} 步，與另一邊同步；已訓練到第 {step} 步"),
    "samples_here": ("samples appear here", "樣本會顯示在這裡"),
    "waiting_picture": ("waiting for the first picture…", "等待第一張圖…"),
    "curves_here": ("loss curves appear here", "損失曲線會顯示在這裡"),
    "curves_soon": ("loss curves appear after the first logged steps", "記錄幾步之後會出現損失曲線"),
    "curves_of": ("Loss curves of {name}", "{name} 的損失曲線"),
    "loss_curves": ("Loss curves", "損失曲線"),
    "pane_b_empty": ("The loss curves of the run on the left, or the second run of a pair, appear here.",
                     "左邊訓練的損失曲線，或對照組的第二個訓練，會顯示在這裡。"),
    "alt_samples": ("samples of {label} at step {step}", "{label} 第 {step} 步的樣本"),
    "alt_curves": ("loss curves of {label} up to step {step}", "{label} 到第 {step} 步的損失曲線"),
    "alt_metrics": ("metrics of {name}", "{name} 的品質指標"),
    # ------------------------------------------------------------ below the first screen
    "section_runs": ("Your runs", "你的訓練"),
    "runs_table": ("Click a row to show that run", "點一列來顯示該次訓練"),
    "shown_run": ("Run shown above", "上方顯示的訓練"),
    "copy_settings": ("Copy its settings into the form", "把它的設定複製到表單"),
    "continue_to": ("Continue to (steps in all)", "繼續訓練到（總步數）"),
    "continue": ("Continue training", "繼續訓練"),
    "files": ("Files of the run shown (when it has ended)", "上方訓練的檔案（結束後）"),
    "section_details": ("Measured notes, curves and metrics", "測量結果、曲線與指標"),
    "preset_note_title": ("What this preset showed when measured", "這個預設實驗測量時的結果"),
    "section_compare": ("Compare two runs", "比較兩次訓練"),
    "left": ("Left", "左邊"),
    "right": ("Right", "右邊"),
    "overlay": ("Curve to overlay", "要疊加的曲線"),
    "compare_button": ("Show side by side", "並排顯示"),
    "both_runs": ("both runs", "兩次訓練"),
    "compare_legend": ("run", "訓練"),
    "replay": ("Replay both runs: the pictures, D's view, G's arrows and the lenses at step",
               "重播兩次訓練：顯示第幾步的圖、判別器的看法、生成器的箭頭與透鏡"),
    "make_gif": ("Make a captioned GIF of the two runs", "把兩次訓練做成有標題的 GIF"),
    "gif_download": ("Download the GIF", "下載 GIF"),
    "gif_with": ("In the GIF, over and under each picture", "GIF 裡每張圖上下也放"),
    "gif_with_layers": ("with D's view and G's arrows", "判別器的看法與生成器的箭頭"),
    "gif_with_lenses": ("with the lenses", "各技巧的透鏡"),
    "gif_none": ("Choose two runs with pictures first (left and right).", "請先選兩次有圖的訓練（左邊與右邊）。"),
    "section_scoreboard": ("Scoreboard", "成績表"),
    "scoreboard": ("Every run of yours that ended", "你所有已結束的訓練"),
    "scoreboard_download": ("Download the scoreboard (CSV)", "下載成績表（CSV）"),
    "section_load": ("Load a checkpoint", "載入檢查點"),
    "load_help": ("A `checkpoint.safetensors` written by ganapp (at most {mb} MB). It is read as safetensors and "
                  "JSON only; nothing is unpickled. It appears as a run you can look at and continue.",
                  "ganapp 寫出的 `checkpoint.safetensors`（最多 {mb} MB）。只以 safetensors 與 JSON 讀取，"
                  "不會執行任何程式。它會變成一次你可以查看、也可以繼續訓練的訓練。"),
    "checkpoint": ("Checkpoint", "檢查點"),
    "section_api": ("Scripting: the API", "寫程式：API"),
    "api_help": ("Every action is an API endpoint (`/new_token`, `/start_run`, `/poll_run`, `/stop_run`, "
                 "`/list_runs`, `/run_files`); see *Use via API* at the foot of the page and the README. This "
                 "browser's token lets a script see the runs listed here: keep it to yourself.",
                 "每個動作都是一個 API 端點（`/new_token`、`/start_run`、`/poll_run`、`/stop_run`、`/list_runs`、"
                 "`/run_files`）；請看頁尾的「透過 API 使用」與 README。這個瀏覽器的權杖（token）讓程式看得到"
                 "這裡列出的訓練：請不要給別人。"),
    "token": ("Your token", "你的權杖（token）"),
    "section_glossary": ("Glossary: what the numbers mean", "名詞解釋：這些數字是什麼意思"),
    "metrics_of_run": ("Quality metrics of the run on the left", "左邊訓練的品質指標"),
    "real_data": ("real data", "真實資料"),
    # ------------------------------------------------------------ tables
    "col_run": ("run", "編號"), "col_name": ("name", "名稱"), "col_data": ("data", "資料集"),
    "col_techniques": ("techniques", "技巧"), "col_state": ("state", "狀態"), "col_steps": ("steps", "步數"),
    "col_final_d": ("final D loss", "最後的判別器損失"), "col_final_g": ("final G loss", "最後的生成器損失"),
    "col_seconds": ("seconds", "秒數"),
    "steps_of": ("{step} of {total}", "{step} / {total}"),
    # ------------------------------------------------------------ a class runs the ablation together
    # (ganapp/web/classes_view.py over ganapp/server/classes.py)
    "class_section": ("A class runs the ablation together", "全班一起做消融實驗（ablation）"),
    "class_heading": ("## A class runs the ablation together", "## 全班一起做消融實驗（ablation）"),
    "class_join_code": ("Class code (on the board)", "班級代碼（寫在黑板上）"),
    "class_your_name": ("Your name (optional: shown only if the teacher turns names on)",
                        "你的名字（可不填：老師開啟顯示名字時才會出現）"),
    "class_join": ("Join the class", "加入班級"),
    "class_teacher_head": ("For the teacher: open a class, choose its experiment",
                           "給老師：開一個班級、選擇實驗"),
    "class_experiment": ("Experiment", "實驗"),
    "class_exp_techniques": ("Each technique against vanilla (6 variants)", "每種技巧對照原始 GAN（6 組）"),
    "class_exp_ablation": ("The paper's ablation: all 8 variants of the sweep", "論文的消融實驗：sweep 的全部 8 組"),
    "class_exp_pair": ("Preset pair: {preset}", "預設實驗對照：{preset}"),
    "class_data": ("Data set", "資料集"),
    "class_steps": ("Steps per run", "每次訓練的步數"),
    "class_names": ("Show students' names on the teacher's screen", "在老師的畫面上顯示學生的名字"),
    "class_open": ("Open a class", "開一個班級"),
    "class_assign": ("Give the class this experiment (a new table)", "讓全班改做這個實驗（新的表格）"),
    "class_close": ("Close the class", "關閉班級"),
    "class_code_big": ("Class code", "班級代碼"),
    "class_link_label": ("Link for the students", "給學生的連結"),
    "class_board_link": ("Teacher's screen (for the projector)", "老師的畫面（投影用）"),
    "class_closes": ("open until {time} UTC · {students} students · {runs} runs",
                     "開放到 {time}（UTC）· {students} 位學生 · {runs} 次訓練"),
    "class_closed": ("This class has closed: no more joins or runs.", "這個班級已經關閉：不能再加入或訓練。"),
    "class_opened": ("Class {code} is open: write the code on the board, or share the link.",
                     "班級 {code} 已開放：把代碼寫在黑板上，或分享連結。"),
    "class_joined": ("You joined class {code}: your assignment is at the top left.",
                     "你已加入班級 {code}：你的任務在左上方。"),
    "class_not_in": ("Join a class first: type the code from the board.", "請先加入班級：輸入黑板上的代碼。"),
    "class_you_are": ("You are student {n} in class {code}.", "你是班級 {code} 的第 {n} 號學生。"),
    "class_assignment": ("Your assignment: {variant} ({techniques}), seed {seed}, {steps} steps on {data}.",
                         "你的任務：{variant}（{techniques}），隨機種子 {seed}，在 {data} 上訓練 {steps} 步。"),
    "class_start": ("▶ Start my assignment", "▶ 開始我的任務"),
    "class_done": ("Done: your run is in the class's table. Start again for another seed.",
                   "完成了：你的訓練已經在全班的表格裡。再按一次開始，做另一個隨機種子。"),
    "class_own": ("Run my own settings in the class", "用我自己的設定在班上訓練"),
    "class_started": ("Started {variant}, seed {seed}: it shows on the right, and in the class's table when it ends.",
                      "已開始 {variant}，隨機種子 {seed}：右邊可以看到它，結束後會進入全班的表格。"),
    "class_what_pair": ("{preset} against vanilla, {steps} steps", "{preset} 對照原始 GAN，{steps} 步"),
    "class_what_techniques": ("Each technique against vanilla on {data}, {steps} steps",
                              "在 {data} 上每種技巧對照原始 GAN，{steps} 步"),
    "class_what_ablation": ("The ablation (the sweep's 8 variants) on {data}, {steps} steps",
                            "在 {data} 上的消融實驗（sweep 的 8 組），{steps} 步"),
    "class_no_technique": ("none", "無"),
    "class_col_variant": ("variant", "組別"),
    "class_col_techniques": ("techniques", "技巧"),
    "class_col_n": ("runs (n)", "次數（n）"),
    "class_apart": ("{n} failed or stopped: not averaged", "{n} 次失敗或停止：不列入平均"),
    "class_active": ("{n} still training", "{n} 次還在訓練"),
    "class_few": ("n = {n}, fewer than {least}: too few to trust", "n = {n}，少於 {least}：太少，還不能相信"),
    "class_no_runs": ("No runs yet: the table fills in as the class's runs finish.",
                      "還沒有訓練：全班的訓練完成後，表格會逐漸填上。"),
    "class_no_pictures": ("No pictures yet: they appear as students start their runs.",
                          "還沒有圖：學生開始訓練後就會出現。"),
    "class_student_n": ("student {n}", "{n} 號學生"),
    "class_export_csv": ("Download the table (CSV)", "下載表格（CSV）"),
    "class_export_md": ("Download the table (Markdown)", "下載表格（Markdown）"),
    "class_plot_alt": ("every finished run's value per variant, one dot per seed; bar: the mean, line: ± one std",
                       "每一組每次完成的訓練的數值，每個隨機種子一個點；橫線：平均，直線：± 一個標準差"),
    "class_legend": ("FM feature matching · MBD minibatch discrimination · HA historical averaging · LS one-sided "
                     "label smoothing · VBN virtual batch normalization; mean ± standard deviation over the "
                     "class's finished runs (one seed each).",
                     "FM 特徵匹配 · MBD 小批次判別 · HA 歷史平均法 · LS 單邊的標籤平滑 · VBN 虛擬的批次歸一化；"
                     "數值是全班完成的訓練（每次一個隨機種子）的平均 ± 標準差。"),
    "class_how_to_read": (
        "**How to read mean ± std over seeds.** Each run starts from a different seed: different random "
        "starting weights and batches. The mean is the typical result; the standard deviation (std) is how much "
        "one run differs from another by chance. Two variants differ only if their dots are clearly apart: when "
        "the gap between the means is smaller than the stds, the class has not shown a difference. A variant "
        "with fewer than 3 runs says little, and a run that failed or was stopped is counted apart, never "
        "averaged in. One run proves nothing; thirty runs start to.",
        "**怎麼看「平均 ± 標準差」。** 每次訓練用不同的隨機種子：起始的權重和批次都不一樣。平均是典型的結果；"
        "標準差表示一次訓練和另一次訓練因為運氣而差多少。兩組只有在點明顯分開時才算不同：如果平均之間的差距"
        "比標準差還小，全班還沒有證明它們不一樣。少於 3 次訓練的組別說明不了什麼；失敗或停止的訓練另外計算，"
        "不列入平均。一次訓練證明不了什麼；三十次才開始有說服力。"),
    # ------------------------------------------------------------ messages
    "no_token": ("Refused: no visitor token; please reload the page", "已拒絕：沒有訪客代碼；請重新整理頁面"),
    "not_started": ("Not started", "沒有開始"),
    "server_says": ("The server refused: {text}", "伺服器拒絕：{text}"),
    # ------------------------------------------------------------ the job server's refusals
    # "refusal_" + JobError.key (ganapp/server), filled with the error's values. The English
    # is the server's own sentence (the error's text); Chinese pages say it from here.
    "refusal_max_steps": ("this server trains at most {most} steps per run; got {got}",
                          "這台伺服器每次訓練最多 {most} 步；你設定了 {got} 步"),
    "refusal_max_batch": ("this server allows batch sizes up to {most}; got {got}",
                          "這台伺服器的批次大小最多 {most}；你設定了 {got}"),
    "refusal_max_width": ("this server allows model widths (hidden_dim) up to {most}; got {got}",
                          "這台伺服器的模型寬度（隱藏層）最多 {most}；你設定了 {got}"),
    "refusal_memory": ("this run would need about {need} of memory; this server allows {most} per job",
                       "這次訓練大約需要 {need} 的記憶體；這台伺服器每個工作最多 {most}。請把批次、模型寬度或小批次判別的核心數調小"),
    "refusal_memory_checkpoint": ("this checkpoint would need about {need} of memory; this server allows {most} per job",
                                  "這個檢查點大約需要 {need} 的記憶體；這台伺服器每個工作最多 {most}"),
    "refusal_checkpoint_bytes": ("this run would write a checkpoint of about {need}; this server keeps at most {most} "
                                 "per run",
                                 "這次訓練會寫出約 {need} 的檢查點；這台伺服器每次訓練最多保留 {most}。請把模型寬度或小批次判別的核心數調小"),
    "refusal_checkpoint_bytes_checkpoint": ("this checkpoint would write about {need}; this server keeps at most "
                                            "{most} per run",
                                            "這個檢查點會寫出約 {need}；這台伺服器每次訓練最多保留 {most}"),
    "refusal_tokens_per_minute": ("too many new visitors from your address ({most} a minute)",
                                  "來自你的網址的新訪客太多（每分鐘最多 {most} 位）；請等一分鐘，或繼續使用你已有的代碼"),
    "refusal_foreign_token": ("this visitor token was not issued by this server",
                              "這個訪客代碼不是這台伺服器發的：請重新整理頁面"),
    "refusal_malformed_token": ("this visitor token is not one of this server's",
                                "這個訪客代碼的格式不對：請重新整理頁面"),
    "refusal_no_such_run": ("you have no run {run}", "你沒有編號 {run} 的訓練"),
    "refusal_no_checkpoint_yet": ("run {name} has no checkpoint to continue from yet",
                                  "訓練「{name}」還沒有可以接著訓練的檢查點；請等它結束"),
    "refusal_upload_gone": ("the uploaded file is gone; upload it again", "上傳的檔案已經不在了；請再上傳一次"),
    "refusal_upload_size": ("the file is {size} MB; this server accepts checkpoints up to {most} MB",
                            "這個檔案有 {size} MB；這台伺服器接受的檢查點最多 {most} MB"),
    "refusal_bad_checkpoint": ("this checkpoint cannot be opened: {detail}", "這個檢查點無法開啟（{detail}）"),
    "refusal_remove_active": ("run {name} is still going; stop it before removing it",
                              "訓練「{name}」還在進行；請先停止再刪除"),
    "refusal_no_download": ("the {data} data set is not on this server, and this server does not download",
                            "這台伺服器沒有 {data} 資料集，也不會下載。請選 ring8、grid25、spiral 或 digits，或請伺服器管理員把檔案放好"),
    "not_loaded": ("Not loaded", "沒有載入"),
    "not_a_checkpoint": ("that file is not a ganapp checkpoint", "這個檔案不是 ganapp 的檢查點"),
    "refusal_deleted_runs_per_visitor": ("Your run {name} was deleted to make room: the server kept at most {most} "
                                         "runs per visitor.",
                                         "你的訓練「{name}」已被刪除以騰出空間：伺服器每位訪客最多保留 {most} 個訓練。"),
    "refusal_deleted_bytes_per_visitor": ("Your run {name} was deleted to make room: the server kept at most {most} "
                                          "MB per visitor.",
                                          "你的訓練「{name}」已被刪除以騰出空間：伺服器每位訪客最多保留 {most} MB。"),
    "refusal_deleted_server_total": ("Your run {name} was deleted to make room for all visitors.",
                                     "你的訓練「{name}」已被刪除，為所有訪客騰出空間：伺服器保留的訓練數量與容量有上限。"),
    "refusal_name_not_text": ("a run's name must be text", "訓練的名稱必須是文字"),
    "refusal_shutting_down": ("the server is shutting down; try again in a minute", "伺服器正在關閉；請一分鐘後再試"),
    "refusal_own_queue_full": ("you already have {count} runs waiting", "你已經有 {count} 個訓練在排隊；請停止一個，或等它們開始"),
    "refusal_queue_full": ("the server's queue is full ({count} runs waiting)",
                           "伺服器的佇列已滿（{count} 個訓練在排隊）；請一分鐘後再試"),
    "refusal_cannot_keep_file": ("could not keep the file: {why}", "無法保存這個檔案（{why}）"),
    "refusal_own_runs_going": ("you have {count} runs going; stop one first", "你有 {count} 個訓練正在進行；請先停止一個"),
    "refusal_owner_bytes": ("this run may take {need} MB of disk; a visitor may keep {most} MB",
                            "這次訓練可能佔用 {need} MB 的磁碟空間；每位訪客最多保留 {most} MB"),
    "refusal_owner_bytes_going": ("your runs that are still going may take all your disk space ({most} MB)",
                                  "你還在進行的訓練可能會用掉你全部的磁碟空間（{most} MB）；請等一個結束"),
    "refusal_total_bytes_going": ("the server's disk space for runs is taken by runs still going",
                                  "伺服器存放訓練的磁碟空間被進行中的訓練佔滿了；請幾分鐘後再試"),
    "choose_preset_first": ("Choose a technique's preset first; it starts beside its vanilla partner.",
                            "請先選一個技巧的預設實驗；它會和原始 GAN 並排開始。"),
    "nothing_to_stop": ("Nothing to stop: the run shown has already ended.", "沒有要停止的：上方的訓練已經結束。"),
    "choose_run_first": ("Choose one of your runs first (a checkpoint's settings appear once it is read).",
                         "請先選一次你的訓練（檢查點的設定讀取後才會出現）。"),
    "choose_two_runs": ("Choose two of your runs (left and right) first.", "請先選兩次你的訓練（左邊與右邊）。"),
    "choose_run_to_continue": ("Choose one of your runs to continue first.", "請先選一次要繼續的訓練。"),
    "form_has_errors": ("Some settings need a fix: see the message at each field.", "有些設定需要修正：請看各欄位的說明。"),
    "link_ignored": ("The link's setting {name} was ignored: {why}", "連結中的設定 {name} 已略過：{why}"),
    # ------------------------------------------------------------ draw your own data (ganapp/web/draw.py, issue 10.4)
    "draw_heading": ("Your drawing", "你畫的資料"),
    "draw_help": ("**Draw your own data.** Draw in the box with the mouse, a pen or a finger: each stroke or dot "
                  "is one mode of the data set, all of equal weight, and the data lie along the ink. The box is the "
                  "data's space: the grid lines are at −2 … 2 and the dashed circle is ring8's (radius 2).",
                  "**畫出自己的資料。** 用滑鼠、觸控筆或手指在方框裡畫：每一筆（或每一點）是資料集的一個模式，"
                  "每個模式一樣重要，資料就落在筆跡上。方框就是資料的空間：格線在 −2 … 2，虛線圓是 ring8 的圓（半徑 2）。"),
    "draw_undo": ("Undo", "復原"),
    "draw_clear": ("Clear", "清除"),
    "draw_shape_ring": ("8 dots", "8 個點"),
    "draw_shape_grid": ("9 dots", "9 個點"),
    "draw_shape_circle": ("Circle", "圓"),
    "draw_shape_two_moons": ("Two moons", "兩個彎月"),
    "draw_shape_smile": ("Smile", "笑臉"),
    "draw_status": ("{strokes} strokes and dots (modes), {points} of at most {most} points",
                    "{strokes} 筆（或點），也就是模式的數目；{points} 個點，最多 {most} 個"),
    "draw_save": ("Save as JSON (for the command line)", "下載成 JSON（給命令列用）"),
    "draw_nothing": ("Nothing drawn yet: draw in the box, or start from a shape.",
                     "還沒有畫任何東西：在方框裡畫，或從一個形狀開始。"),
    "draw_metrics_note": ("How a drawn set is measured: its strokes are its modes. A sample is high quality "
                          "within 0.15 (3 ink widths) of the drawing; *modes covered* counts the strokes and dots "
                          "that have such samples, *mode KL* how unevenly they share them; *distance to real data* "
                          "also sees whether a long stroke is covered along its whole length.",
                          "自己畫的資料怎麼量：每一筆就是一個模式。離筆跡 0.15（3 倍筆跡寬度）以內的樣本算高品質；"
                          "*涵蓋的模式數* 是有高品質樣本的筆數，*模式 KL* 是樣本分配得多不平均；"
                          "*與真實資料的距離* 還能看出一條長的筆畫是否整條都被涵蓋。"),
    "draw_err_needed": ("The data set is drawn, but nothing is drawn yet: draw in the box below, or start from a shape.",
                        "資料集選了 drawn，但還沒有畫任何東西：在下面的方框裡畫，或從一個形狀開始。"),
    "draw_err_broken": ("This drawing is damaged and cannot be read; clear it and draw again.",
                        "這個圖已損壞，無法讀取；請清除後重畫。"),
    "draw_err_strokes": ("A drawing holds at most {most} strokes and dots; this stroke was not added.",
                         "一張圖最多 {most} 筆（或點）；這一筆沒有加上去。"),
    "draw_err_points": ("The drawing is full (at most {most} points); this stroke was not added. Undo a stroke "
                        "or draw shorter ones.",
                        "圖已經滿了（最多 {most} 個點）；這一筆沒有加上去。請復原一筆，或畫短一點。"),
    "draw_err_numbers": ("A point of the drawing is not a pair of numbers.", "圖中有一個點不是一對數字。"),
    "draw_err_shape": ("This is not a drawing: strokes are lists of [x, y] points.",
                       "這不是一張圖：每一筆應該是一串 [x, y] 點。"),
    "draw_err_empty": ("The drawing is empty: draw at least one stroke or dot.", "圖是空的：至少畫一筆或一個點。"),
    "draw_err_too_big": ("The drawing is too large (at most {most} points before simplifying).",
                         "圖太大了（簡化前最多 {most} 個點）。"),
    "draw_err_json": ("The drawing could not be read (it is not valid JSON).", "無法讀取這張圖（不是有效的 JSON）。"),
    "draw_link_broken": ("the drawing in the link is damaged; the rest of the link was used",
                         "連結中的圖已損壞；連結的其他部分都已套用"),
    # ------------------------------------------------------------ (end of draw your own data)
    # field errors (the page's words; the API keeps the config's own messages)
    "err_empty": ("{label} is empty: enter a number.", "{label}是空的：請輸入數字。"),
    "err_number": ("{label} must be a number; you entered {value}.", "{label}必須是數字；你輸入的是 {value}。"),
    "err_whole": ("{label} must be a whole number; you entered {value}.", "{label}必須是整數；你輸入的是 {value}。"),
    "err_range": ("{label} must be {rule}; you entered {value}.", "{label}必須{rule}；你輸入的是 {value}。"),
    "err_choice": ("{label}: choose one of the options.", "{label}：請從選項中選一個。"),
    "rule_between": ("between {low} and {high}", "介於 {low} 到 {high} 之間"),
    "rule_open_low": ("more than {low} and at most {high}", "大於 {low} 且不超過 {high}"),
    "rule_open_high": ("at least {low} and less than {high}", "至少 {low} 且小於 {high}"),
    "rule_open_both": ("more than {low} and less than {high}", "大於 {low} 且小於 {high}"),
    "rule_at_least": ("at least {low}", "至少 {low}"),
    "rule_more_than": ("more than {low}", "大於 {low}"),
    "server_limit": (" (this server's limit)", "（這台伺服器的上限）"),
    "steps_label_limit": ("{label} (at most {high})", "{label}（最多 {high}）"),
    "preset_label": ("Preset", "預設實驗"),
    # ------------------------------------------------------------ see inside the game (ganapp/web/inside_view.py, issue 10.1 and 10.3)
    "inside_heading": ("## See inside the game", "## 看進賽局的內部"),
    "inside_heatmap": ("D's view: D(x) as a heatmap behind the points", "判別器的看法：點後面的熱度圖是 D(x)"),
    "inside_arrows": ("G's push: arrows on generated points", "生成器的推力：生成樣本上的箭頭"),
    "inside_none": ("Start or pick a run to see inside the game.", "開始或選一個訓練，就能看進賽局的內部。"),
    "inside_waiting": ("The views appear with the run's first picture.", "這些圖會和第一張樣本圖一起出現。"),
    "inside_nothing": ("Nothing to show for this run: D's heatmap and G's arrows are drawn for 2-D data, and a "
                       "technique's lens when that technique is on.",
                       "這個訓練沒有可顯示的內容：熱度圖和箭頭只畫 2D 資料，每個技巧的透鏡要打開該技巧才會出現。"),
    "inside_step": ("at step {step}", "第 {step} 步"),
    "inside_right_run": ("The right pane's run: {label}", "右邊的訓練：{label}"),
    "inside_scale_low": ("0: D says “generated”", "0：判別器認為是生成樣本"),
    "inside_scale_high": ("1: D says “real”", "1：判別器認為是真實資料"),
    "inside_scale_range": ("D(x) on this picture: {low} to {high}", "這張圖上的 D(x)：{low} 到 {high}"),
    "inside_arrows_note": ("Arrows: minus the gradient of G's loss ({loss}) with respect to each of {count} generated "
                           "points: where G's next step pushes it. Lengths compare the points of one picture.",
                           "箭頭：生成器損失（{loss}）對 {count} 個生成樣本各自的負梯度，也就是生成器下一步把它推向哪裡。"
                           "箭頭長度只在同一張圖內比較。"),
    "inside_loss_ns": ("non-saturating, −log D(G(z))", "非飽和，−log D(G(z))"),
    "inside_loss_sat": ("saturating, log(1 − D(G(z)))", "飽和，log(1 − D(G(z)))"),
    "inside_loss_fm": ("feature matching", "特徵匹配"),
    "inside_loss_mbd": ("{loss}, D with minibatch features", "{loss}，判別器含小批次特徵"),
    "inside_alt_layers": ("D's heatmap and G's arrows over the samples of {label} at step {step}",
                          "{label} 第 {step} 步的樣本上的判別器熱度圖與生成器箭頭"),
    "lens_mbd_title": ("Minibatch discrimination: how alike each batch looks to D",
                       "小批次判別（minibatch discrimination）：判別器眼中每個批次有多相似"),
    "lens_mbd_text": ("Closeness c(i, j) summed over the {kernels} kernels, for a real batch (left) and a generated "
                      "batch (right): dark red means identical to D. A collapsing generator lights its matrix up. "
                      "Below: o(x) of each sample, real (blue) and generated (orange). Mean closeness: real {real}, "
                      "generated {fake}.",
                      "對 {kernels} 個核加總的接近度 c(i, j)，左邊是真實資料批次，右邊是生成樣本批次：深紅色表示判別器看來一模一樣。"
                      "模式崩潰的生成器會讓它的矩陣整片變紅。下面：每個樣本的 o(x)，真實資料是藍色、生成樣本是橘色。"
                      "平均接近度：真實 {real}，生成 {fake}。"),
    "lens_vbn_title": ("Virtual batch normalization: does a sample depend on its batch-mates?",
                       "虛擬的批次歸一化（virtual batch normalization）：樣本會受同批次的其他樣本影響嗎？"),
    "lens_vbn_text": ("The same {shown} noise vectors z in two batches with different batch-mates (dot: batch A, ring: "
                      "batch B). Left: this G with batch normalization: the outputs move with their batch-mates (up to "
                      "{bn}). Right: this G with VBN: they stay put (up to {vbn}).",
                      "同樣 {shown} 個雜訊向量 z 放進兩個同伴不同的批次（實心點：批次 A，圓圈：批次 B）。"
                      "左：這個生成器改用批次歸一化，輸出跟著同伴移動（最多 {bn}）。右：用虛擬的批次歸一化，輸出不動（最多 {vbn}）。"),
    "lens_vbn_text_image": ("The same {shown} noise vectors z in two batches with different batch-mates. Rows: batch "
                            "normalization in batch A, in batch B; VBN in batch A, in batch B. With batch normalization "
                            "the images change with their batch-mates (up to {bn}); with VBN they do not (up to {vbn}).",
                            "同樣 {shown} 個雜訊向量 z 放進兩個同伴不同的批次。每一列：批次歸一化在批次 A、在批次 B；"
                            "虛擬的批次歸一化在批次 A、在批次 B。批次歸一化的影像會隨同伴改變（最多 {bn}），"
                            "虛擬的批次歸一化不會（最多 {vbn}）。"),
    "lens_ls_title": ("One-sided label smoothing: D(x) on real data", "單邊的標籤平滑（one-sided label smoothing）：真實資料的 D(x)"),
    "lens_ls_text": ("Histogram of D(x) on {n} real points; the red line is the real target α = {alpha}. D is trained "
                     "toward α rather than 1, so it stays less sure of itself (mean D(x) {mean}).",
                     "{n} 個真實資料點的 D(x) 直方圖；紅線是真實資料的目標 α = {alpha}。判別器的目標是 α 而不是 1，"
                     "所以比較不會過度自信（平均 D(x) {mean}）。"),
    "lens_fm_title": ("Feature matching: D's inner features on real and generated data",
                      "特徵匹配（feature matching）：判別器內部特徵在真實資料與生成樣本上的平均"),
    "lens_fm_text": ("Mean of the first {shown} of D's inner features on real (blue) and generated (orange) data: G's "
                     "goal is to move the orange bars onto the blue ones. Below: their squared distance over the steps "
                     "(now {distance}).",
                     "判別器前 {shown} 個內部特徵在真實資料（藍）與生成樣本（橘）上的平均：生成器的目標是把橘色長條移到藍色上。"
                     "下面：兩者的距離平方隨訓練步數的變化（目前 {distance}）。"),
    # ------------------------------------------------------------ (end of see inside the game)
    # ------------------------------------------------------------ historical averaging in a tiny game
    # (ganapp/web/games_view.py over ganapp/games.py)
    "games_section": ("Historical averaging in a tiny game", "歷史平均法（historical averaging）：一個很小的賽局"),
    "games_game": ("Game", "賽局"),
    "games_xy": ("min over x, max over y of x·y (equilibrium (0, 0))", "x 要讓 x·y 最小、y 要讓它最大（均衡 (0, 0)）"),
    "games_fx": ("(f(x) − 1)(y − 1), f(x) = x if x < 0 else x² (the paper's §3.3; equilibrium (1, 1))",
                 "(f(x) − 1)(y − 1)，x < 0 時 f(x) = x，否則 x²（論文 3.3 節；均衡 (1, 1)）"),
    "games_order": ("Updates", "更新方式"),
    "games_simultaneous": ("simultaneous: both from the same point (the paper)", "同時：兩人從同一點出發（論文）"),
    "games_alternating": ("alternating: y, then x (as the app trains D, then G)",
                          "輪流：先 y 再 x（和本程式先訓練判別器、再訓練生成器相同）"),
    "games_mode": ("Averaging (as in the settings)", "平均方式（與設定中相同）"),
    "games_uniform": ("uniform: all past values (the paper)", "均勻：過去所有的值（論文）"),
    "games_exponential": ("exponential: recent values count more (decay {decay})",
                          "指數：最近的值比較重要（衰減率 {decay}）"),
    "games_lr": ("Learning rate (step size)", "學習率（步長）"),
    "games_weight": ("Weight of the pull to the past (historical averaging)", "拉回過去平均的權重（歷史平均法）"),
    "games_steps": ("Steps", "訓練步數"),
    "games_explain": (
        "Two players with one number each: **x** wants V small, **y** wants V large, as a generator and a "
        "discriminator pull against each other. Each step both move along their own gradient: at once, from the "
        "same point (simultaneous, the paper's examples: plain gradient descent spirals out), or y first and then "
        "x (alternating, as the app trains D and then G: it keeps circling). "
        "**Orange**: plain gradient descent. **Blue**: the same, but each player's loss also gets "
        "*weight* × (its value − the average of its past values)², historical averaging exactly as this app "
        "trains with it (§3.3). The pull toward its own past average damps the circling. Try it: a larger "
        "learning rate makes the orange path leave faster; too small a weight does not damp enough, too large a "
        "weight slows the blue path down or makes it diverge too; weight 0 makes both paths the same.",
        "兩個玩家，各有一個數字：**x** 想讓 V 變小，**y** 想讓 V 變大，就像生成器和判別器互相拉扯。"
        "每一步兩人沿著自己的梯度移動：同時從同一點出發（論文的例子：單純的梯度下降越繞越遠），"
        "或先 y 再 x（輪流，和本程式先訓練判別器、再訓練生成器一樣：一直繞圈）。**橘色**：單純的梯度下降。**藍色**：一樣，但每個玩家的損失"
        "再加上 *權重* ×（它現在的值 − 它過去的值的平均）²，也就是這個程式訓練時用的歷史平均法（3.3 節）。"
        "拉回自己過去平均的力量會減少繞圈。試試看：學習率越大，橘色離開得越快；權重太小時，繞圈減少得不夠；"
        "權重太大時，藍色會變慢，甚至也發散；權重為 0 時兩條路徑完全一樣。"),
    "games_plain": ("Plain gradient descent", "單純的梯度下降"),
    "games_averaged": ("With historical averaging (weight {weight})", "加上歷史平均法（權重 {weight}）"),
    "games_reached": ("reached the equilibrium: distance {distance} after {steps} steps",
                      "到達均衡：{steps} 步後距離 {distance}"),
    "games_closer": ("closer but not there: distance {distance} after {steps} steps (started at {start})",
                     "靠近了，但還沒到：{steps} 步後距離 {distance}（起點 {start}）"),
    "games_orbiting": ("kept circling: distance {distance} after {steps} steps (started at {start})",
                       "一直在繞圈：{steps} 步後距離 {distance}（起點 {start}）"),
    "games_away": ("moved away: distance {distance} after {steps} steps (started at {start})",
                   "越離越遠：{steps} 步後距離 {distance}（起點 {start}）"),
    "games_diverged": ("diverged: left the ±{bound} box at step {step}", "發散：在第 {step} 步超出 ±{bound} 的範圍"),
    "games_only_averaged": ("What the class sees: plain gradient descent does not settle; with historical "
                            "averaging the players reach the equilibrium.",
                            "全班看到的：單純的梯度下降停不下來；加上歷史平均法，兩個玩家到達均衡。"),
    "games_both": ("Both reach the equilibrium with these settings: here plain gradient descent needs no help.",
                   "在這組設定下兩者都到達均衡：這時單純的梯度下降不需要幫忙。"),
    "games_neither": ("Neither reaches the equilibrium with these settings: try a smaller learning rate or "
                      "another weight.",
                      "在這組設定下兩者都沒有到達均衡：試試較小的學習率或別的權重。"),
    "games_only_plain": ("Here plain gradient descent reaches the equilibrium and historical averaging does not.",
                         "這裡單純的梯度下降到達均衡，加上歷史平均法的反而沒有。"),
    "games_plane": ("The players' path in the (x, y) plane: ○ start, + equilibrium {eq}",
                    "兩個玩家在 (x, y) 平面上的路徑：○ 起點，+ 均衡 {eq}"),
    "games_distance": ("Distance to the equilibrium (log scale) at each step; dashed: 0.01",
                       "每一步與均衡的距離（對數刻度）；虛線：0.01"),
    "games_alt_plane": ("paths of both players in the (x, y) plane", "兩個玩家在 (x, y) 平面上的路徑"),
    "games_alt_distance": ("distance to the equilibrium against step", "與均衡的距離對步數"),
    "games_refused": ("The game cannot run: {why}", "無法計算這個賽局：{why}"),
    # ------------------------------------------------------------ play, pause, one step (ganapp.web.play)
    "play_pause": ("Pause", "暫停"),
    "play_resume": ("Resume", "繼續"),
    "play_step_d": ("D step", "判別器一步"),
    "play_step_g": ("G step", "生成器一步"),
    "play_step": ("+1 step", "+1 步"),
    "play_speed_label": ("Slow motion (steps per second)", "慢動作（每秒步數）"),
    "play_speed_off": ("full speed", "全速"),
    "play_speed": ("{n} step/s", "每秒 {n} 步"),
    "play_paused_at": ("paused at step {step}", "暫停在第 {step} 步"),
    "play_g_turn": ("D moved; G's turn", "判別器已動，輪到生成器"),
    "play_slow": ("slow motion: {n} steps/s", "慢動作：每秒 {n} 步"),
    "play_nothing_yet": ("Nothing to pause or step: start a run first.", "沒有可以暫停或單步執行的訓練：請先開始一個訓練。"),
    "play_nothing": ("Nothing to pause or step: start a run first (the run shown has ended).",
                     "沒有可以暫停或單步執行的訓練：請先開始一個訓練（上方的訓練已經結束）。"),
    "refusal_play_not_paused": ("Pause “{name}” first: single steps are taken while a run is paused.",
                                "請先暫停「{name}」：訓練暫停時才能一步一步執行。"),
    "refusal_play_not_paused_resume": ("“{name}” is not paused.", "「{name}」沒有暫停。"),
    "refusal_play_not_running": ("“{name}” is {state}: only a running run can be paused or stepped.",
                                 "「{name}」{state}：只有訓練中的訓練才能暫停或單步執行。"),
    "refusal_play_not_started": ("“{name}” has not started yet: wait for its first picture.",
                                 "「{name}」還沒開始：請等第一張圖出現。"),
    "refusal_play_busy": ("“{name}” is not taking commands right now (it may be ending, or measuring): "
                          "try again in a moment.",
                          "「{name}」現在無法接受指令（可能正在結束或量測中）：請稍後再試。"),
    "refusal_play_bad_speed": ("The speed is a number of steps per second above 0 (0: full speed).",
                               "速度是每秒的步數，必須大於 0（0 表示全速）。"),
    "refusal_play_view": ("“{name}” opens a checkpoint and trains nothing: there is nothing to pause.",
                          "「{name}」只是開啟檢查點，沒有在訓練：沒有東西可以暫停。"),
}

# What each technique changes, why, and what to look for here (the form's notes and the
# "what to look for" line under the pictures).
TECHNIQUE_NOTES: dict[str, tuple[str, str]] = {
    "feature_matching": (
        "Changes G's goal: match the average of D's inner features on real data instead of fooling D (§3.1). "
        "Look for: samples smear between the modes rather than sitting on them.",
        "改變生成器的目標：讓判別器內部特徵的平均值與真實資料一致，而不是騙過判別器（3.1 節）。"
        "要看：樣本散在模式之間，而不是落在模式上。"),
    "minibatch_discrimination": (
        "D also sees how close each sample is to the rest of its batch, so a collapsed G is easy to catch (§3.2). "
        "Look for: the samples spread out first, then settle on the modes.",
        "判別器也看得到每個樣本和同批次其他樣本有多接近，所以崩潰的生成器很容易被抓到（3.2 節）。"
        "要看：樣本先散開，再落到各個模式上。"),
    "historical_averaging": (
        "Each player is pulled back toward the average of its own past weights, which damps orbits (§3.3). "
        "Look for: with a large weight, samples stop moving and stay off the modes.",
        "每個玩家被拉回它自己過去權重的平均，減少繞圈（3.3 節）。要看：權重太大時，樣本幾乎不動，停在模式之外。"),
    "label_smoothing": (
        "D's target for real data is α instead of 1 (fakes stay 0), so D is less over-confident (§3.4). "
        "Look for: mean D(x) stays below α in the curves.",
        "判別器對真實資料的目標是 α 而不是 1（生成樣本仍是 0），判別器比較不會過度自信（3.4 節）。"
        "要看：曲線中真實資料的平均 D(x) 停在 α 以下。"),
    "virtual_batch_norm": (
        "G normalises each example with a fixed reference batch instead of its own batch (§3.5). "
        "Look for: sharper clusters on the modes.",
        "生成器用固定的參考批次來歸一化每個樣本，而不是用它自己的批次（3.5 節）。要看：模式上的點更集中。"),
}

LOOK_FOR: dict[str, tuple[str, str]] = {
    "none": ("Press Start, or choose a preset and start the pair. Watch whether the generated samples cover "
             "every mode of the real data or pile onto one (mode collapse).",
             "按「開始」，或選一個預設實驗並開始對照。看生成樣本是涵蓋真實資料的每個模式，"
             "還是全部擠在同一個地方（模式崩潰，mode collapse）。"),
    "vanilla": ("Vanilla GAN, no technique: watch whether the samples cover every mode or pile onto one "
                "(mode collapse).",
                "原始 GAN，沒有技巧：看樣本是涵蓋每個模式，還是擠在同一個地方（模式崩潰，mode collapse）。"),
    "collapse_pair": ("Left: vanilla piles its samples onto one streak (mode collapse). Right: the treated run first "
                      "spreads out like a spray, then finds the ring, often only after 1,000 steps or more. The side that is "
                      "ahead waits at the other's step.",
                      "左邊：原始 GAN 把樣本堆在一條線上（模式崩潰，mode collapse）。右邊：加了技巧的訓練先像噴霧"
                      "一樣散開，之後才找到圓環，常常要到 1,000 步以後。跑得快的一邊會停在另一邊的步數等它。"),
    "pair": ("Left: vanilla. Right: the same seed with the technique, held at the same step; compare the captions.",
             "左邊：原始 GAN。右邊：同樣的隨機種子加上技巧，兩邊停在同一步；比較標題中的數字。"),
    "digits": ("Digits: blobs turn into strokes, then into digits; the classifier score climbs toward real digits' "
               "9.4 and the classes covered toward 10.",
               "數字影像：模糊的點先變成筆畫，再變成數字；分類器分數往真實數字的 9.4 上升，涵蓋的類別數往 10 上升。"),
}

# Friendly names of metrics and curves, and one line on what each means (the glossary).
METRICS: dict[str, tuple[str, str, str, str]] = {
    # name: (English title, 中文, English meaning, 中文 meaning)
    "modes_covered": ("modes covered", "涵蓋的模式數",
                      "how many of the real data's clusters have samples nearby (ring8 has 8, grid25 has 25)",
                      "真實資料的群集中有幾個附近有樣本（ring8 有 8 個，grid25 有 25 個）"),
    "high_quality": ("high-quality samples %", "高品質樣本比例 %",
                     "the share of samples that land close to a real mode", "落在真實模式附近的樣本比例"),
    "mode_kl": ("mode unevenness (KL divergence)", "模式分布不均（KL 散度）",
                "how unevenly the samples share out over the modes; 0 is perfectly even",
                "樣本在各模式間分布得多不平均；0 表示完全平均"),
    "nn_distance": ("distance to real data", "與真實資料的距離",
                    "the mean distance from a sample to the nearest real point; lower is closer",
                    "樣本到最近真實資料點的平均距離；越小越接近"),
    "classifier_score": ("classifier score", "分類器分數",
                         "how clear and varied the digits look to a trained classifier (real digits: about 9.4)",
                         "訓練好的分類器覺得這些數字有多清楚、多樣（真實數字約 9.4）"),
    "frechet_distance": ("Fréchet distance", "Fréchet 距離",
                         "how far the samples' features are from real data's; lower is better",
                         "生成樣本的特徵與真實資料差多遠；越小越好"),
    "classes_covered": ("classes covered", "涵蓋的類別數", "how many of the 10 digits appear among the samples",
                        "樣本中出現了 10 個數字中的幾個"),
    "d_loss": ("D loss", "判別器損失", "the discriminator's loss: low when D tells real from fake easily",
               "判別器的損失：判別器很容易分辨真假時會很低"),
    "g_loss": ("G loss", "生成器損失", "the generator's loss: low when G fools D", "生成器的損失：騙過判別器時會很低"),
    "d_real": ("mean D(x)", "真實資料的平均 D(x)", "how real D thinks the real data is (0 to 1)",
               "判別器認為真實資料有多真（0 到 1）"),
    "d_fake": ("mean D(G(z))", "生成樣本的平均 D(G(z))", "how real D thinks the generated samples are (0 to 1)",
               "判別器認為生成樣本有多真（0 到 1）"),
}
OVERLAY_COLUMNS = ("g_loss", "d_loss", "d_real", "d_fake")

# Headings: the same words with Markdown's marks.
for _key, _mark in (("title", "# "), ("section_details", "## "), ("section_runs", "## ")):
    TEXT[{"title": "title_md", "section_details": "h_details", "section_runs": "h_runs"}[_key]] = \
        tuple(_mark + text for text in TEXT[_key])


def language(value: Any) -> str:
    """A supported language code from a URL's `lang` or an Accept-Language header; English
    when nothing matches. Any Chinese (zh, zh-TW, zh-Hant, zh-HK, zh-CN) gets 繁體中文,
    the only Chinese here, rather than English."""
    if not isinstance(value, str):
        return DEFAULT_LANGUAGE
    for part in value.split(",")[:8]:
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh") or tag in ("tw", "中文"):
            return "zh-TW"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "zh-TW" else pair[0]


def tr(lang: str, key: str, **values: Any) -> str:
    """The text `key` in `lang`, with `values` filled in."""
    text = pick(TEXT[key], lang)
    return text.format(**values) if values else text


def refusal(error: Exception, lang: str) -> str:
    """What the job server said when it refused, in `lang`: its sentence in English, and in
    other languages the translation of its key (JobError.key) when there is one."""
    key = getattr(error, "key", None)
    if lang != DEFAULT_LANGUAGE and key and f"refusal_{key}" in TEXT:
        try:
            return pick(TEXT[f"refusal_{key}"], lang).format(**getattr(error, "values", {}))
        except (KeyError, IndexError, ValueError):  # a value missing: say it as the server did
            pass
    return str(error)


def metric_name(name: str, lang: str) -> str:
    """'high_quality' -> 'high-quality samples %'; 'real_frechet_distance' -> 'real data: Fréchet distance'."""
    if name.startswith("real_"):
        return f"{tr(lang, 'real_data')}: {metric_name(name[len('real_'):], lang)}"
    entry = METRICS.get(name)
    return pick(entry[:2], lang) if entry else name.replace("_", " ")


def metric_meaning(name: str, lang: str) -> str:
    entry = METRICS.get(name)
    return pick(entry[2:], lang) if entry else ""


def state_name(state: str, lang: str) -> str:
    key = f"state_{state}"
    return tr(lang, key) if key in TEXT else state


def number(value: float | int, lang: str = "en") -> str:
    """Numbers as a class reads them: whole numbers with thousands separators, others short."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:.3g}"
